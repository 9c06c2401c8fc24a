/*
 * main.c (cli) - cli_main: find the command named by the leading words of
 * argv (longest match, so `operator raft snapshot save` beats `operator`),
 * handle -h/-help/--help and version, suggest the nearest command for a
 * typo, and run it. The command table with usage text lives here.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define COMMON_HELP                                                                      \
	"\nHTTP Options:\n"                                                             \
	"  -address=<string>       Server address (VAULT_ADDR), default " CLI_DEFAULT_ADDR "\n" \
	"  -ca-cert=<string>       PEM CA bundle to verify the server (VAULT_CACERT)\n"    \
	"  -ca-path=<string>       Directory of PEM CAs (VAULT_CAPATH)\n"                  \
	"  -client-cert=<string>   PEM client certificate (VAULT_CLIENT_CERT)\n"          \
	"  -client-key=<string>    PEM client key (VAULT_CLIENT_KEY)\n"                    \
	"  -tls-skip-verify        Do not verify the server certificate (VAULT_SKIP_VERIFY)\n" \
	"  -namespace=<string>     Namespace, sent as X-Vault-Namespace (VAULT_NAMESPACE)\n" \
	"  -non-interactive        Never prompt\n"                                         \
	"  -wrap-ttl=<duration>    Wrap the response in a single-use token (VAULT_WRAP_TTL)\n" \
	"\nOutput Options:\n"                                                           \
	"  -format=<string>        table (default), json or yaml (VAULT_FORMAT)\n"          \
	"  -field=<string>         Print only this field, raw\n"

const struct cli_cmd cli_cmds[] = {
	{"status", cli_cmd_status, "Print seal and HA status",
	 "Usage: coffer status [options]\n\n"
	 "  Prints the seal status of the server. Exit code 0: unsealed, 1: error,\n"
	 "  2: sealed.\n\n  Examples:\n      $ coffer status\n      $ coffer status -format=json\n"},
	{"operator init", cli_cmd_operator_init, "Initializes a server",
	 "Usage: coffer operator init [options]\n\n"
	 "  Initializes a server: generates the root key split into unseal key shares\n"
	 "  and an initial root token.\n\n"
	 "  Examples:\n      $ coffer operator init\n"
	 "      $ coffer operator init -key-shares=1 -key-threshold=1 -format=json\n\n"
	 "Command Options:\n"
	 "  -key-shares=<int>       Number of key shares (default 5)\n"
	 "  -key-threshold=<int>    Shares needed to unseal (default 3)\n"
	 "  -recovery-shares, -recovery-threshold  For auto-unseal servers\n"
	 "  -status                 Exit 0 if initialized, 2 if not\n"},
	{"operator unseal", cli_cmd_operator_unseal, "Unseals the server",
	 "Usage: coffer operator unseal [options] [KEY]\n\n"
	 "  Provides one unseal key share. Without KEY it prompts (no echo) or reads a\n"
	 "  line from standard input.\n\n"
	 "  Examples:\n      $ coffer operator unseal\n      $ coffer operator unseal -reset\n\n"
	 "Command Options:\n  -reset     Discard the shares entered so far\n"},
	{"operator seal", cli_cmd_operator_seal, "Seals the server",
	 "Usage: coffer operator seal [options]\n\n  Seals the server (root-protected).\n\n"
	 "  Example:\n      $ coffer operator seal\n"},
	{"operator rekey", cli_cmd_operator_rekey, "Generates new unseal keys",
	 "Usage: coffer operator rekey [options] [KEY]\n\n"
	 "  Rekeys the unseal keys: start with -init, then provide a quorum of the\n"
	 "  current key shares.\n\n"
	 "  Examples:\n      $ coffer operator rekey -init -key-shares=5 -key-threshold=3\n"
	 "      $ coffer operator rekey -nonce=NONCE KEY\n"
	 "      $ coffer operator rekey -status\n      $ coffer operator rekey -cancel\n\n"
	 "Command Options:\n  -init -cancel -status -key-shares=<int> -key-threshold=<int>\n"
	 "  -nonce=<string> -target=barrier|recovery\n"},
	{"operator rotate", cli_cmd_operator_rotate, "Rotates the encryption key",
	 "Usage: coffer operator rotate [options]\n\n"
	 "  Installs a new encryption key term in the keyring.\n\n"
	 "  Example:\n      $ coffer operator rotate\n"},
	{"operator key-status", cli_cmd_operator_key_status, "Provides information about the active encryption key",
	 "Usage: coffer operator key-status [options]\n\n  Example:\n      $ coffer operator key-status\n"},
	{"operator generate-root", cli_cmd_operator_generate_root, "Generates a new root token",
	 "Usage: coffer operator generate-root [options] [KEY]\n\n"
	 "  Generates a root token from a quorum of unseal key shares.\n\n"
	 "  Examples:\n      $ coffer operator generate-root -generate-otp\n"
	 "      $ coffer operator generate-root -init -otp=OTP\n"
	 "      $ coffer operator generate-root KEY\n"
	 "      $ coffer operator generate-root -decode=ENCODED -otp=OTP\n\n"
	 "Command Options:\n  -init -otp=<string> -generate-otp -decode=<string> -cancel -status\n"
	 "  -nonce=<string>\n"},
	{"operator raft join", cli_cmd_operator_raft_join, "Joins a node to the Raft cluster",
	 "Usage: coffer operator raft join [options] LEADER_API_ADDR\n\n"
	 "  Asks this (new, sealed) node to join the cluster led by LEADER_API_ADDR;\n"
	 "  then unseal it with the cluster's keys.\n\n"
	 "  Example:\n      $ coffer operator raft join https://node1:8200\n\n"
	 "Command Options:\n  -leader-ca-cert=<string>  The leader's CA (PEM or @file)\n"
	 "  -non-voter  Join as a non-voter\n  -retry  Retry while the leader is unreachable\n"},
	{"operator raft list-peers", cli_cmd_operator_raft_list_peers,
	 "Returns the Raft peer set",
	 "Usage: coffer operator raft list-peers\n\n"
	 "  Lists the members of the raft cluster (GET sys/storage/raft/configuration).\n"},
	{"operator raft remove-peer", cli_cmd_operator_raft_remove_peer,
	 "Removes a node from the Raft cluster",
	 "Usage: coffer operator raft remove-peer SERVER_ID\n\n"
	 "  Example:\n      $ coffer operator raft remove-peer node3\n"},
	{"operator raft autopilot state", cli_cmd_operator_raft_autopilot_state,
	 "Displays the state of the raft cluster under autopilot",
	 "Usage: coffer operator raft autopilot state\n\n"
	 "  Health, failure tolerance and per-server replication state\n"
	 "  (GET sys/storage/raft/autopilot/state).\n"},
	{"operator raft snapshot inspect", cli_cmd_operator_raft_inspect,
	 "Inspects a snapshot file offline",
	 "Usage: coffer operator raft snapshot inspect FILE\n\n"
	 "  Checks the archive and its checksums and prints meta.json; needs no server.\n"},
	{"operator raft snapshot save", cli_cmd_operator_raft_save, "Saves a snapshot of integrated storage",
	 "Usage: coffer operator raft snapshot save FILE\n\n"
	 "  Streams GET /v1/sys/storage/raft/snapshot into FILE.\n\n"
	 "  Example:\n      $ coffer operator raft snapshot save backup.snap\n"},
	{"operator raft snapshot restore", cli_cmd_operator_raft_restore, "Restores a snapshot",
	 "Usage: coffer operator raft snapshot restore [options] FILE\n\n"
	 "  Example:\n      $ coffer operator raft snapshot restore backup.snap\n\n"
	 "Command Options:\n  -force   Restore a snapshot from another cluster (snapshot-force)\n"},
	{"login", cli_cmd_login, "Authenticate locally",
	 "Usage: coffer login [options] [AUTH K=V...]\n\n"
	 "  Authenticates and stores the token in ~/.vault-token.\n\n"
	 "  Examples:\n      $ coffer login s.XXXX\n"
	 "      $ coffer login -method=userpass username=alice\n"
	 "      $ coffer login -method=approle role_id=... secret_id=...\n"
	 "      $ coffer login -method=kubernetes role=demo jwt=@/var/run/secrets/token\n\n"
	 "Command Options:\n  -method=<string>  token (default), userpass, approle, kubernetes...\n"
	 "  -path=<string>    Mount path of the auth method (default: the method)\n"
	 "  -no-store         Do not write the token helper file\n"
	 "  -token-only       Print only the token (implies -no-store)\n"},
	{"read", cli_cmd_read, "Read data and retrieves secrets",
	 "Usage: coffer read [options] PATH [K=V...]\n\n"
	 "  Reads data from PATH (extra K=V become query parameters).\n\n"
	 "  Examples:\n      $ coffer read secret/foo\n      $ coffer read -field=password database/creds/readonly\n"},
	{"write", cli_cmd_write, "Write data, configuration, and secrets",
	 "Usage: coffer write [options] PATH [DATA K=V...]\n\n"
	 "  Writes data to PATH. K=@file reads a file, K=- reads stdin, a lone - reads\n"
	 "  a JSON object from stdin.\n\n"
	 "  Examples:\n      $ coffer write secret/foo bar=baz\n"
	 "      $ coffer write auth/kubernetes/config kubernetes_ca_cert=@ca.crt\n"
	 "      $ echo '{\"a\":\"b\"}' | coffer write secret/foo -\n\n"
	 "Command Options:\n  -force, -f   Allow writing with no data\n"},
	{"list", cli_cmd_list, "List data or secrets",
	 "Usage: coffer list [options] PATH\n\n  Example:\n      $ coffer list secret/\n"},
	{"delete", cli_cmd_delete, "Delete secrets and configuration",
	 "Usage: coffer delete [options] PATH\n\n  Example:\n      $ coffer delete secret/foo\n"},
	{"patch", cli_cmd_patch, "Patch data, configuration, and secrets",
	 "Usage: coffer patch [options] PATH [DATA K=V...]\n\n"
	 "  Sends a JSON merge patch (PATCH, application/merge-patch+json).\n\n"
	 "  Example:\n      $ coffer patch pki/roles/example allow_localhost=false\n"},
	{"unwrap", cli_cmd_unwrap, "Unwrap a wrapped secret",
	 "Usage: coffer unwrap [options] [TOKEN]\n\n"
	 "  Unwraps a response-wrapping token (once: it is then revoked). Without\n"
	 "  TOKEN the client's own token (VAULT_TOKEN) is the wrapping token.\n\n"
	 "  Examples:\n      $ coffer unwrap s.XXXX\n"
	 "      $ VAULT_TOKEN=s.XXXX coffer unwrap\n"},
	{"path-help", cli_cmd_path_help, "Retrieve API help for paths",
	 "Usage: coffer path-help [options] PATH\n\n  Example:\n      $ coffer path-help secret/\n"},
	{"kv get", cli_cmd_kv_get, "Retrieves data from the KV store",
	 "Usage: coffer kv get [options] KEY\n\n"
	 "  Examples:\n      $ coffer kv get secret/foo\n      $ coffer kv get -mount=secret -version=1 foo\n\n"
	 "Command Options:\n  -mount=<string>  KV mount\n  -version=<int>   Version (v2)\n"},
	{"kv put", cli_cmd_kv_put, "Sets or updates data in the KV store",
	 "Usage: coffer kv put [options] KEY [DATA]\n\n"
	 "  Examples:\n      $ coffer kv put secret/foo bar=baz\n"
	 "      $ coffer kv put -mount=secret -cas=1 foo bar=baz\n\n"
	 "Command Options:\n  -mount=<string>  KV mount\n  -cas=<int>       Check-and-set version (v2)\n"},
	{"kv patch", cli_cmd_kv_patch, "Sets or updates data in the KV store without overwriting",
	 "Usage: coffer kv patch [options] KEY [DATA]\n\n"
	 "  Example:\n      $ coffer kv patch secret/foo extra=value\n\n"
	 "Command Options:\n  -mount=<string>  -cas=<int>\n"},
	{"kv delete", cli_cmd_kv_delete, "Deletes versions in the KV store",
	 "Usage: coffer kv delete [options] KEY\n\n"
	 "  Examples:\n      $ coffer kv delete secret/foo\n      $ coffer kv delete -versions=1,2 secret/foo\n"},
	{"kv undelete", cli_cmd_kv_undelete, "Undeletes versions in the KV store",
	 "Usage: coffer kv undelete [options] KEY\n\n  Example:\n      $ coffer kv undelete -versions=2 secret/foo\n"},
	{"kv destroy", cli_cmd_kv_destroy, "Permanently removes one or more versions in the KV store",
	 "Usage: coffer kv destroy [options] KEY\n\n  Example:\n      $ coffer kv destroy -versions=2 secret/foo\n"},
	{"kv list", cli_cmd_kv_list, "List data or secrets",
	 "Usage: coffer kv list [options] PATH\n\n  Example:\n      $ coffer kv list secret/\n"},
	{"kv rollback", cli_cmd_kv_rollback, "Rolls back to a previous version of data",
	 "Usage: coffer kv rollback [options] KEY\n\n  Example:\n      $ coffer kv rollback -version=1 secret/foo\n"},
	{"kv metadata get", cli_cmd_kv_metadata_get, "Retrieves key metadata from the KV store",
	 "Usage: coffer kv metadata get [options] KEY\n\n  Example:\n      $ coffer kv metadata get secret/foo\n"},
	{"kv metadata put", cli_cmd_kv_metadata_put, "Sets or updates key settings in the KV store",
	 "Usage: coffer kv metadata put [options] KEY\n\n"
	 "  Example:\n      $ coffer kv metadata put -max-versions=5 -custom-metadata=team=a secret/foo\n\n"
	 "Command Options:\n  -max-versions=<int> -cas-required -delete-version-after=<dur>\n"
	 "  -custom-metadata=k=v (repeatable)\n"},
	{"kv metadata delete", cli_cmd_kv_metadata_delete, "Deletes all versions and metadata for a key",
	 "Usage: coffer kv metadata delete [options] KEY\n\n  Example:\n      $ coffer kv metadata delete secret/foo\n"},
	{"secrets enable", cli_cmd_secrets_enable, "Enable a secrets engine",
	 "Usage: coffer secrets enable [options] TYPE\n\n"
	 "  Examples:\n      $ coffer secrets enable database\n"
	 "      $ coffer secrets enable -path=secret -version=2 kv\n\n"
	 "Command Options:\n  -path -description -default-lease-ttl -max-lease-ttl -options=k=v\n"
	 "  -version=<int> -local -seal-wrap -force-no-cache -listing-visibility\n"},
	{"secrets disable", cli_cmd_secrets_disable, "Disable a secrets engine",
	 "Usage: coffer secrets disable [options] PATH\n\n  Example:\n      $ coffer secrets disable kv/\n"},
	{"secrets list", cli_cmd_secrets_list, "List enabled secrets engines",
	 "Usage: coffer secrets list [options]\n\n  Example:\n      $ coffer secrets list -detailed\n"},
	{"secrets tune", cli_cmd_secrets_tune, "Tune a secrets engine configuration",
	 "Usage: coffer secrets tune [options] PATH\n\n  Example:\n      $ coffer secrets tune -max-lease-ttl=24h database/\n"},
	{"secrets move", cli_cmd_secrets_move, "Move a secrets engine to a new path",
	 "Usage: coffer secrets move [options] SOURCE DESTINATION\n\n  Example:\n      $ coffer secrets move secret/ generic/\n"},
	{"auth enable", cli_cmd_auth_enable, "Enables a new auth method",
	 "Usage: coffer auth enable [options] TYPE\n\n"
	 "  Examples:\n      $ coffer auth enable kubernetes\n      $ coffer auth enable -path=users userpass\n"},
	{"auth disable", cli_cmd_auth_disable, "Disables an auth method",
	 "Usage: coffer auth disable [options] PATH\n\n  Example:\n      $ coffer auth disable userpass/\n"},
	{"auth list", cli_cmd_auth_list, "Lists enabled auth methods",
	 "Usage: coffer auth list [options]\n\n  Example:\n      $ coffer auth list\n"},
	{"auth tune", cli_cmd_auth_tune, "Tunes an auth method configuration",
	 "Usage: coffer auth tune [options] PATH\n\n  Example:\n      $ coffer auth tune -default-lease-ttl=72h userpass/\n"},
	{"policy write", cli_cmd_policy_write, "Uploads a named policy from a file",
	 "Usage: coffer policy write [options] NAME PATH\n\n"
	 "  Examples:\n      $ coffer policy write my-policy policy.hcl\n"
	 "      $ cat policy.hcl | coffer policy write my-policy -\n"},
	{"policy read", cli_cmd_policy_read, "Prints the contents of a policy",
	 "Usage: coffer policy read [options] NAME\n\n  Example:\n      $ coffer policy read default\n"},
	{"policy list", cli_cmd_policy_list, "Lists the installed policies",
	 "Usage: coffer policy list [options]\n\n  Example:\n      $ coffer policy list\n"},
	{"policy delete", cli_cmd_policy_delete, "Deletes a policy by name",
	 "Usage: coffer policy delete [options] NAME\n\n  Example:\n      $ coffer policy delete my-policy\n"},
	{"policy fmt", cli_cmd_policy_fmt, "Formats a local policy file to the canonical HCL",
	 "Usage: coffer policy fmt [options] PATH\n\n  Rewrites the file in place.\n\n"
	 "  Example:\n      $ coffer policy fmt my-policy.hcl\n"},
	{"token create", cli_cmd_token_create, "Create a new token",
	 "Usage: coffer token create [options]\n\n"
	 "  Examples:\n      $ coffer token create -policy=my-policy -ttl=1h\n"
	 "      $ coffer token create -orphan -period=24h -field=token\n\n"
	 "Command Options:\n  -policy (repeatable) -ttl -explicit-max-ttl -period -orphan -display-name\n"
	 "  -use-limit -renewable -metadata=k=v -no-default-policy -type -role -id\n"},
	{"token lookup", cli_cmd_token_lookup, "Display information about a token",
	 "Usage: coffer token lookup [options] [TOKEN | ACCESSOR]\n\n"
	 "  Examples:\n      $ coffer token lookup\n      $ coffer token lookup -accessor ACCESSOR\n"},
	{"token renew", cli_cmd_token_renew, "Renew a token lease",
	 "Usage: coffer token renew [options] [TOKEN]\n\n  Example:\n      $ coffer token renew -increment=30m\n"},
	{"token revoke", cli_cmd_token_revoke, "Revoke a token and its children",
	 "Usage: coffer token revoke [options] [TOKEN | ACCESSOR]\n\n"
	 "  Examples:\n      $ coffer token revoke TOKEN\n      $ coffer token revoke -self\n"
	 "      $ coffer token revoke -mode=orphan TOKEN\n      $ coffer token revoke -mode=path auth/userpass\n"},
	{"token capabilities", cli_cmd_token_capabilities, "Print capabilities of a token on a path",
	 "Usage: coffer token capabilities [options] [TOKEN] PATH\n\n"
	 "  Example:\n      $ coffer token capabilities secret/foo\n"},
	{"lease lookup", cli_cmd_lease_lookup, "Lookup the lease of a secret",
	 "Usage: coffer lease lookup ID\n\n  Example:\n      $ coffer lease lookup database/creds/readonly/2f6a...\n"},
	{"lease renew", cli_cmd_lease_renew, "Renews the lease of a secret",
	 "Usage: coffer lease renew [options] ID\n\n  Example:\n      $ coffer lease renew -increment=1h database/creds/readonly/2f6a...\n"},
	{"lease revoke", cli_cmd_lease_revoke, "Revokes leases and secrets",
	 "Usage: coffer lease revoke [options] ID\n\n"
	 "  Examples:\n      $ coffer lease revoke database/creds/readonly/2f6a...\n"
	 "      $ coffer lease revoke -prefix database/creds\n\n"
	 "Command Options:\n  -prefix -force -sync\n"},
	{"audit enable", cli_cmd_audit_enable, "Enables an audit device",
	 "Usage: coffer audit enable [options] TYPE [CONFIG K=V...]\n\n"
	 "  Examples:\n      $ coffer audit enable file file_path=/var/log/audit.log\n"
	 "      $ coffer audit enable -path=file_json file file_path=/tmp/a.json format=json\n\n"
	 "Command Options:\n  -path=<string> -description=<string> -local\n"},
	{"audit disable", cli_cmd_audit_disable, "Disables an audit device",
	 "Usage: coffer audit disable [options] PATH\n\n  Example:\n      $ coffer audit disable file/\n"},
	{"audit list", cli_cmd_audit_list, "Lists enabled audit devices",
	 "Usage: coffer audit list [options]\n\n  Example:\n      $ coffer audit list -detailed\n"},
	{"audit verify", cli_cmd_audit_verify, "Verifies the tamper-evident chain of an audit log",
	 "Usage: coffer audit verify [options] FILE\n\n"
	 "  Checks every line's chain HMAC; prints \"ok, N entries\" (exit 0) or the\n"
	 "  first bad line and why: altered, removed, inserted, reordered (exit 2).\n\n"
	 "  Examples:\n      $ coffer audit verify -path=file /var/log/audit.log\n"
	 "      $ coffer audit verify -key-file=chain.key audit.log\n\n"
	 "Command Options:\n  -path=<string>      Device whose chain key to fetch (sudo)\n"
	 "  -key-file=<string>  Base64 chain key exported earlier (offline check)\n"},
	{"print token", cli_cmd_print_token, "Prints the contents of a token",
	 "Usage: coffer print token\n\n  Prints the token the client would use.\n"},
};
const size_t cli_ncmds = sizeof(cli_cmds) / sizeof(cli_cmds[0]);

static void print_version(FILE *f)
{
	fprintf(f, "%s\n", CLI_VERSION_STRING);
}

static void print_main_help(FILE *f)
{
	fprintf(f,
		"Usage: coffer <command> [args]\n\n"
		"Common commands:\n"
		"    read        Read data and retrieves secrets\n"
		"    write       Write data, configuration, and secrets\n"
		"    delete      Delete secrets and configuration\n"
		"    list        List data or secrets\n"
		"    login       Authenticate locally\n"
		"    server      Start a Coffer server\n"
		"    status      Print seal and HA status\n"
		"\nOther commands:\n"
		"    audit       Interact with audit devices\n"
		"    auth        Interact with auth methods\n"
		"    kv          Interact with the key/value secrets engine\n"
		"    lease       Interact with leases\n"
		"    operator    Perform operator-specific tasks\n"
		"    patch       Patch data, configuration, and secrets\n"
		"    path-help   Retrieve API help for paths\n"
		"    policy      Interact with policies\n"
		"    print       Prints runtime configurations\n"
		"    secrets     Interact with secrets engines\n"
		"    token       Interact with tokens\n"
		"    version     Prints the Coffer CLI version\n"
		"\nThe environment variables VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, VAULT_CAPATH,\n"
		"VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_FORMAT,\n"
		"VAULT_CLIENT_TIMEOUT and VAULT_NAMESPACE are honoured as by Vault.\n"
		"Run `coffer <command> -h` for a command's usage and examples.\n");
}

/* Help for a group ("kv", "operator raft"): its subcommands. */
static void print_group_help(FILE *f, const char *group)
{
	size_t gl = strlen(group);
	fprintf(f, "Usage: coffer %s <subcommand> [options] [args]\n\nSubcommands:\n", group);
	for (size_t i = 0; i < cli_ncmds; i++) {
		const char *n = cli_cmds[i].name;
		if (strncmp(n, group, gl) == 0 && n[gl] == ' ')
			fprintf(f, "    %-22s %s\n", n + gl + 1, cli_cmds[i].synopsis);
	}
}

static int is_help_flag(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0;
}

static int is_group(const char *words)
{
	size_t l = strlen(words);
	for (size_t i = 0; i < cli_ncmds; i++)
		if (strncmp(cli_cmds[i].name, words, l) == 0 && cli_cmds[i].name[l] == ' ')
			return 1;
	return 0;
}

/* Suggest among commands of the same depth under `group` ("" = top). */
static void suggest(FILE *f, const char *group, const char *word)
{
	const char *cands[128];
	char buf[128][64];
	size_t n = 0, gl = strlen(group);
	for (size_t i = 0; i < cli_ncmds && n < 120; i++) {
		const char *nm = cli_cmds[i].name;
		if (gl && !(strncmp(nm, group, gl) == 0 && nm[gl] == ' '))
			continue;
		const char *rest = gl ? nm + gl + 1 : nm;
		const char *sp = strchr(rest, ' ');
		size_t wl = sp ? (size_t)(sp - rest) : strlen(rest);
		snprintf(buf[n], sizeof(buf[n]), "%.*s", (int)wl, rest);
		int dup = 0;
		for (size_t j = 0; j < n; j++)
			if (strcmp(cands[j], buf[n]) == 0)
				dup = 1;
		if (!dup) {
			cands[n] = buf[n];
			n++;
		}
	}
	if (!gl) {
		static const char *const extra[] = {"version", "server"};
		for (size_t i = 0; i < 2; i++)
			cands[n++] = extra[i];
	}
	const char *s = cli_suggest(word, cands, n);
	if (s)
		fprintf(f, "Did you mean \"%s%s%s\"?\n", group, gl ? " " : "", s);
}

int cli_main(int argc, char **argv)
{
	const char *prog = "coffer";
	if (argc < 2) {
		print_main_help(stderr);
		return CLI_EUNKNOWN;
	}
	const char *a1 = argv[1];
	if (strcmp(a1, "version") == 0 || strcmp(a1, "-version") == 0 || strcmp(a1, "-v") == 0 ||
	    strcmp(a1, "--version") == 0) {
		print_version(stdout);
		return CLI_OK;
	}
	if (is_help_flag(a1) || strcmp(a1, "help") == 0) {
		print_main_help(stdout);
		return CLI_OK;
	}
	/* longest match of up to 4 leading words */
	const struct cli_cmd *cmd = NULL;
	int used = 0;
	char words[256];
	char group[256] = "";
	for (int k = 1; k <= 4 && k < argc; k++) {
		if (argv[k][0] == '-')
			break;
		size_t n = 0;
		words[0] = '\0';
		for (int j = 1; j <= k; j++)
			n += (size_t)snprintf(words + n, sizeof(words) - n, "%s%s", j > 1 ? " " : "",
					      argv[j]);
		if (n >= sizeof(words))
			break;
		for (size_t i = 0; i < cli_ncmds; i++)
			if (strcmp(cli_cmds[i].name, words) == 0) {
				cmd = &cli_cmds[i];
				used = k;
			}
		if (is_group(words))
			snprintf(group, sizeof(group), "%s", words);
		else
			break;
	}
	if (!cmd) {
		if (group[0]) {
			/* a group, with no or an unknown subcommand */
			int gw = 1;
			for (const char *p = group; *p; p++)
				gw += *p == ' ';
			int wants_help = gw + 1 < argc && is_help_flag(argv[gw + 1]);
			if (gw + 1 < argc && !is_help_flag(argv[gw + 1]) && argv[gw + 1][0] != '-') {
				fprintf(stderr, "Unknown command: %s %s\n", group, argv[gw + 1]);
				suggest(stderr, group, argv[gw + 1]);
				fputc('\n', stderr);
			}
			print_group_help(wants_help ? stdout : stderr, group);
			return wants_help ? CLI_OK : CLI_ELOCAL;
		}
		fprintf(stderr, "Unknown command: %s\n", a1);
		suggest(stderr, "", a1);
		fputc('\n', stderr);
		print_main_help(stderr);
		return CLI_EUNKNOWN;
	}
	int cargc = argc - 1 - used;
	char **cargv = argv + 1 + used;
	for (int i = 0; i < cargc; i++) {
		if (strcmp(cargv[i], "--") == 0)
			break;
		if (is_help_flag(cargv[i])) {
			fputs(cmd->help, stdout);
			fputs(COMMON_HELP, stdout);
			return CLI_OK;
		}
	}
	struct cli c;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cli_init(&c, prog);
	int rc = cmd->run(&c, cargc, cargv);
	fflush(c.out);
	cli_cleanup(&c);
	curl_global_cleanup();
	return rc;
}
