/*
 * cmd_operator.c - `status` and `operator ...`: seal status, init, unseal,
 * seal, rekey, rotate, key-status, generate-root and raft snapshots. These
 * talk to the unauthenticated sys/ endpoints (init, unseal, seal-status) or
 * root-protected ones, exactly as Vault's CLI does.
 */
#include "cli/cli.h"

#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static int64_t ji(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *js(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Seal status (+ leader info) as Vault's table. */
static void print_seal_status(struct cli *c, json_t *st)
{
	const char *rows[40][2];
	char *owned[40];
	size_t n = 0, no = 0;
#define ROW(k, v) (rows[n][0] = (k), rows[n][1] = (v), n++)
#define OWN(fmt, ...) (asprintf(&owned[no], fmt, __VA_ARGS__) < 0 ? "" : owned[no++])
	int recovery = json_is_true(json_object_get(st, "recovery_seal"));
	int sealed = json_is_true(json_object_get(st, "sealed"));
	ROW("Key", "Value");
	ROW(recovery ? "Recovery Seal Type" : "Seal Type", js(st, "type"));
	ROW("Initialized", json_is_true(json_object_get(st, "initialized")) ? "true" : "false");
	ROW("Sealed", sealed ? "true" : "false");
	ROW(recovery ? "Total Recovery Shares" : "Total Shares", OWN("%lld", (long long)ji(st, "n")));
	ROW("Threshold", OWN("%lld", (long long)ji(st, "t")));
	if (sealed) {
		ROW("Unseal Progress",
		    OWN("%lld/%lld", (long long)ji(st, "progress"), (long long)ji(st, "t")));
		ROW("Unseal Nonce", js(st, "nonce"));
	}
	if (json_is_true(json_object_get(st, "migration")))
		ROW("Seal Migration in Progress", "true");
	ROW("Version", js(st, "version"));
	ROW("Build Date", js(st, "build_date"));
	ROW("Storage Type", js(st, "storage_type"));
	if (*js(st, "cluster_name") && *js(st, "cluster_id")) {
		ROW("Cluster Name", js(st, "cluster_name"));
		ROW("Cluster ID", js(st, "cluster_id"));
	}
	int ha = json_is_true(json_object_get(st, "ha_enabled"));
	ROW("HA Enabled", ha ? "true" : "false");
	if (ha && !sealed) {
		ROW("HA Cluster", js(st, "leader_cluster_address"));
		int self = json_is_true(json_object_get(st, "is_self"));
		ROW("HA Mode", self ? "active" : "standby");
		if (self && *js(st, "active_time") && strncmp(js(st, "active_time"), "0001-", 5) != 0)
			ROW("Active Since", js(st, "active_time"));
		if (!self)
			ROW("Active Node Address",
			    *js(st, "leader_address") ? js(st, "leader_address") : "<none>");
	}
	if (ji(st, "raft_committed_index") > 0)
		ROW("Raft Committed Index", OWN("%lld", (long long)ji(st, "raft_committed_index")));
	if (ji(st, "raft_applied_index") > 0)
		ROW("Raft Applied Index", OWN("%lld", (long long)ji(st, "raft_applied_index")));
	cli_table(c->out, &rows[0][0], n, 2);
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
#undef ROW
#undef OWN
}

/* Merge sys/leader into a seal-status object (as Vault's status does). */
static void merge_leader(struct cli *c, json_t *st)
{
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = "sys/leader"};
	struct verr e = {0};
	if (cli_http(c, &rq, &r, &e) != 0)
		return;
	if (r.status == 200 && json_is_object(r.json)) {
		static const char *const keys[] = {"ha_enabled", "is_self", "active_time",
						   "leader_address", "leader_cluster_address",
						   "raft_committed_index", "raft_applied_index"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_t *v = json_object_get(r.json, keys[i]);
			if (v)
				json_object_set(st, keys[i], v);
		}
	} else if (!json_object_get(st, "ha_enabled")) {
		/* sealed: Vault shows HA as enabled-but-sealed only when it knows */
		json_object_set_new(st, "ha_enabled", json_false());
	}
	cli_resp_free(&r);
}

static int output_seal_status(struct cli *c, json_t *st)
{
	if (!json_object_get(st, "ha_enabled"))
		json_object_set_new(st, "ha_enabled", json_false());
	if (c->field)
		return cli_output_field(c, json_object_get(st, c->field), c->field);
	if (strcmp(cli_format(c), "table") != 0)
		return cli_output_data(c, st);
	print_seal_status(c, st);
	return CLI_OK;
}

int cli_cmd_status(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 0, &rc))
		return rc;
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = "sys/seal-status"};
	struct verr e = {0};
	/* status: 1 for any error, 2 for sealed (Vault's documented exception) */
	if (cli_http(c, &rq, &r, &e) != 0)
		return cli_fail(c, CLI_ELOCAL, "Error checking seal status: %s", e.msg);
	if (r.status != 200 || !json_is_object(r.json)) {
		char buf[8192];
		cli_api_error_text(buf, sizeof(buf), &r);
		cli_resp_free(&r);
		return cli_fail(c, CLI_ELOCAL, "Error checking seal status: %s", buf);
	}
	json_t *st = json_incref(r.json);
	cli_resp_free(&r);
	int sealed = json_is_true(json_object_get(st, "sealed"));
	if (!sealed)
		merge_leader(c, st);
	rc = output_seal_status(c, st);
	json_decref(st);
	if (rc)
		return rc;
	return sealed ? CLI_EREMOTE : CLI_OK;
}

/* -pgp-keys: comma-separated; each a file holding a base64 key (as Vault's
 * CLI takes them) or the base64 key itself. NULL on a read error. */
static json_t *pgp_key_list(struct cli *c, const char *spec)
{
	json_t *arr = json_array();
	char *dup = strdup(spec), *save = NULL;
	for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
		char *txt = NULL;
		size_t len = 0;
		struct verr e = {0};
		if (access(t, R_OK) == 0) {
			if (cli_read_file(&txt, &len, t, NULL, &e)) {
				cli_fail(c, CLI_ELOCAL, "Error reading PGP key %s: %s", t, e.msg);
				json_decref(arr);
				arr = NULL;
				break;
			}
			while (len && (txt[len - 1] == '\n' || txt[len - 1] == '\r' || txt[len - 1] == ' '))
				txt[--len] = '\0';
			json_array_append_new(arr, json_string(txt));
			free(txt);
		} else {
			json_array_append_new(arr, json_string(t));
		}
	}
	free(dup);
	return arr;
}

int cli_cmd_operator_init(struct cli *c, int argc, char **argv)
{
	int rc, status = 0;
	long shares = 5, threshold = 3, rshares = 5, rthreshold = 3;
	int rs_set = 0, rt_set = 0;
	struct cli_strlist pgp = {0};
	const char *root_pgp = NULL;
	struct cli_flag fl[] = {
		{"key-shares", CLI_FLAG_INT, &shares, "Number of key shares", NULL},
		{"n", CLI_FLAG_INT, &shares, "Alias of -key-shares", NULL},
		{"key-threshold", CLI_FLAG_INT, &threshold, "Shares needed to unseal", NULL},
		{"t", CLI_FLAG_INT, &threshold, "Alias of -key-threshold", NULL},
		{"recovery-shares", CLI_FLAG_INT, &rshares, "Recovery shares (auto-unseal)", &rs_set},
		{"recovery-threshold", CLI_FLAG_INT, &rthreshold, "Recovery threshold", &rt_set},
		{"pgp-keys", CLI_FLAG_LIST, &pgp, "Comma-separated PGP public keys (files or base64), one per share", NULL},
		{"root-token-pgp-key", CLI_FLAG_STRING, &root_pgp, "PGP key (not supported)", NULL},
		{"status", CLI_FLAG_BOOL, &status, "Only report whether initialized", NULL},
		{0},
	};
	json_t *body = NULL;
	struct cli_resp r = {0};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 0, &rc))
		goto out;
	if (status) {
		struct cli_req rq = {.method = "GET", .path = "sys/init"};
		if ((rc = cli_call(c, &rq, &r, "Error checking init status", 0)) != 0)
			goto out;
		if (json_is_true(json_object_get(r.json, "initialized"))) {
			fprintf(c->out, "Vault is initialized\n");
			rc = CLI_OK;
		} else {
			fprintf(c->out, "Vault is not initialized\n");
			rc = CLI_EREMOTE;
		}
		goto out;
	}
	if (root_pgp) {
		rc = cli_fail(c, CLI_ELOCAL, "-root-token-pgp-key is not supported by this client");
		goto out;
	}
	body = json_pack("{s:I, s:I}", "secret_shares", (json_int_t)shares, "secret_threshold",
			 (json_int_t)threshold);
	if (pgp.n) {
		json_t *all = json_array();
		for (size_t i = 0; i < pgp.n; i++) {
			json_t *one = pgp_key_list(c, pgp.v[i]);
			if (!one) {
				json_decref(all);
				rc = CLI_ELOCAL;
				goto out;
			}
			json_array_extend(all, one);
			json_decref(one);
		}
		json_object_set_new(body, "pgp_keys", all);
	}
	if (rs_set)
		json_object_set_new(body, "recovery_shares", json_integer(rshares));
	if (rt_set)
		json_object_set_new(body, "recovery_threshold", json_integer(rthreshold));
	struct cli_req rq = {.method = "PUT", .path = "sys/init", .body = body};
	if ((rc = cli_call(c, &rq, &r, "Error initializing", 0)) != 0)
		goto out;
	json_t *keys = json_object_get(r.json, "keys");
	json_t *b64 = json_object_get(r.json, "keys_base64");
	json_t *rkeys = json_object_get(r.json, "recovery_keys");
	json_t *rb64 = json_object_get(r.json, "recovery_keys_base64");
	const char *root = js(r.json, "root_token");
	if (strcmp(cli_format(c), "table") != 0 || c->field) {
		/* Vault's init output object (runbooks use .unseal_keys_b64) */
		json_t *o = json_pack("{s:O, s:O, s:I, s:I, s:O, s:O, s:I, s:I, s:s}",
				      "unseal_keys_b64", b64 ? b64 : json_array(),
				      "unseal_keys_hex", keys ? keys : json_array(),
				      "unseal_shares", (json_int_t)shares, "unseal_threshold",
				      (json_int_t)threshold, "recovery_keys_b64",
				      rb64 ? rb64 : json_array(), "recovery_keys_hex",
				      rkeys ? rkeys : json_array(), "recovery_keys_shares",
				      (json_int_t)(rs_set ? rshares : 0), "recovery_keys_threshold",
				      (json_int_t)(rt_set ? rthreshold : 0), "root_token", root);
		if (c->field)
			rc = cli_output_field(c, json_object_get(o, c->field), c->field);
		else
			rc = cli_output_data(c, o);
		json_decref(o);
		goto out;
	}
	size_t i;
	json_t *k;
	json_array_foreach(b64 ? b64 : keys, i, k) fprintf(c->out, "Unseal Key %zu: %s\n", i + 1,
							  json_string_value(k));
	json_array_foreach(rb64 ? rb64 : rkeys, i, k) fprintf(c->out, "Recovery Key %zu: %s\n", i + 1,
							     json_string_value(k));
	fprintf(c->out, "\nInitial Root Token: %s\n\n", root);
	if (json_array_size(b64 ? b64 : keys) > 0)
		fprintf(c->out,
			"Vault initialized with %ld key shares and a key threshold of %ld. Please\n"
			"securely distribute the key shares printed above. When the Vault is\n"
			"re-sealed, restarted, or stopped, you must supply at least %ld of these keys\n"
			"to unseal it before it can start servicing requests.\n\n"
			"Vault does not store the generated root key. Without at least %ld keys to\n"
			"reconstruct the root key, Vault will remain permanently sealed!\n\n"
			"It is possible to generate new unseal keys, provided you have a quorum of\n"
			"existing unseal keys shares. See \"%s operator rekey\" for more information.\n",
			shares, threshold, threshold, threshold, c->prog);
	else
		fprintf(c->out, "Success! Vault is initialized\n");
	rc = CLI_OK;
out:
	json_decref(body);
	cli_resp_free(&r);
	cli_strlist_clear(&pgp);
	return rc;
}

int cli_cmd_operator_unseal(struct cli *c, int argc, char **argv)
{
	int rc, reset = 0, migrate = 0;
	struct cli_flag fl[] = {
		{"reset", CLI_FLAG_BOOL, &reset, "Discard the shares entered so far", NULL},
		{"migrate", CLI_FLAG_BOOL, &migrate, "Seal migration", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 1, &rc))
		return rc;
	json_t *body;
	char *key = NULL;
	if (reset) {
		body = json_pack("{s:b}", "reset", 1);
	} else {
		if (argc == 1) {
			key = strdup(argv[0]);
		} else {
			if (c->non_interactive)
				return cli_fail(c, CLI_ELOCAL, "Unseal key required (non-interactive)");
			key = cli_prompt_secret(c, "Unseal Key (will be hidden): ");
			if (!key)
				return cli_fail(c, CLI_ELOCAL, "Error reading unseal key");
		}
		body = json_pack("{s:s}", "key", key);
		if (migrate)
			json_object_set_new(body, "migrate", json_true());
	}
	struct cli_resp r;
	struct cli_req rq = {.method = "PUT", .path = "sys/unseal", .body = body};
	rc = cli_call(c, &rq, &r, "Error unsealing", 0);
	cli_free_secret(key);
	json_decref(body);
	if (rc)
		return rc;
	json_t *st = json_incref(r.json);
	cli_resp_free(&r);
	if (!json_is_true(json_object_get(st, "sealed")))
		merge_leader(c, st);
	rc = output_seal_status(c, st);
	json_decref(st);
	return rc;
}

int cli_cmd_operator_seal(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "PUT", "sys/seal", "Error sealing", &r, &rc))
		return rc;
	cli_resp_free(&r);
	fprintf(c->out, "Success! Vault is sealed.\n");
	return CLI_OK;
}

/* rekey and generate-root: an attempt in progress collects key shares. */
struct attempt {
	const char *status_path; /* GET: progress and nonce */
	const char *status_what;
	const char *update_path; /* PUT {key, nonce} */
	const char *prompt;      /* asking for a key share */
	void (*print)(struct cli *c, const json_t *st); /* status as a table */
};

static int attempt_output(struct cli *c, const struct attempt *a, const json_t *st)
{
	if (strcmp(cli_format(c), "table") != 0)
		return cli_output_data(c, st);
	a->print(c, st);
	return CLI_OK;
}

/* -status (or no key share with -non-interactive): print the progress.
 * Otherwise post the key share (argument or prompt) with the attempt's nonce
 * (-nonce, or the one in the status). Returns 1 with the exit code in *rc
 * when the command is done, 0 with the update's response in *r. With st
 * non-NULL the status is read even when -nonce is given and *st receives it
 * (caller owns): the final answer of an attempt does not repeat its
 * parameters (rekey: no "t"), so the caller takes them from here. */
static int attempt_update(struct cli *c, const struct attempt *a, int argc, char **argv,
			  int status, const char *nonce, struct cli_resp *r, json_t **st, int *rc)
{
	char *key = NULL, *nonce_owned = NULL;
	json_t *body = NULL;
	int done = 1;
	struct cli_req sq = {.method = "GET", .path = a->status_path};
	if (status || argc == 0) {
		if ((*rc = cli_call(c, &sq, r, a->status_what, 0)) != 0)
			goto out;
		if (status || c->non_interactive) {
			*rc = attempt_output(c, a, r->json);
			goto out;
		}
	}
	key = argc == 1 ? strdup(argv[0]) : cli_prompt_secret(c, a->prompt);
	if (!key) {
		*rc = cli_fail(c, CLI_ELOCAL, "Error reading key share");
		goto out;
	}
	if ((!nonce || st) && !r->json && (*rc = cli_call(c, &sq, r, a->status_what, 0)) != 0)
		goto out;
	if (!nonce) {
		nonce_owned = strdup(js(r->json, "nonce"));
		nonce = nonce_owned;
	}
	if (st)
		*st = json_incref(r->json);
	cli_resp_free(r);
	body = json_pack("{s:s, s:s}", "key", key, "nonce", nonce);
	struct cli_req rq = {.method = "PUT", .path = a->update_path, .body = body};
	done = (*rc = cli_call(c, &rq, r, "Error posting unseal key", 0)) != 0;
out:
	cli_free_secret(key);
	free(nonce_owned);
	json_decref(body);
	return done;
}

static void print_rekey_status(struct cli *c, const json_t *st)
{
	char n1[32], n2[32], n3[48];
	snprintf(n1, sizeof(n1), "%lld", (long long)ji(st, "n"));
	snprintf(n2, sizeof(n2), "%lld", (long long)ji(st, "t"));
	snprintf(n3, sizeof(n3), "%lld/%lld", (long long)ji(st, "progress"),
		 (long long)ji(st, "required"));
	int started = json_is_true(json_object_get(st, "started"));
	const char *rows[][2] = {
		{"Key", "Value"},
		{"Nonce", js(st, "nonce")},
		{"Started", started ? "true" : "false"},
		{"Rekey Progress", n3},
		{"New Shares", n1},
		{"New Threshold", n2},
		{"Verification Required",
		 json_is_true(json_object_get(st, "verification_required")) ? "true" : "false"},
	};
	cli_table(c->out, &rows[0][0], sizeof(rows) / sizeof(rows[0]), 2);
}

static void print_verify_status(struct cli *c, const json_t *st)
{
	char n1[32], n2[32], n3[48];
	snprintf(n1, sizeof(n1), "%lld", (long long)ji(st, "n"));
	snprintf(n2, sizeof(n2), "%lld", (long long)ji(st, "t"));
	snprintf(n3, sizeof(n3), "%lld/%lld", (long long)ji(st, "progress"), (long long)ji(st, "t"));
	const char *rows[][2] = {
		{"Key", "Value"},
		{"Verification Nonce", js(st, "nonce")},
		{"Started", json_is_true(json_object_get(st, "started")) ? "true" : "false"},
		{"Verification Progress", n3},
		{"New Shares", n1},
		{"New Threshold", n2},
	};
	cli_table(c->out, &rows[0][0], sizeof(rows) / sizeof(rows[0]), 2);
}

int cli_cmd_operator_rekey(struct cli *c, int argc, char **argv)
{
	int rc, init = 0, cancel = 0, status = 0, verify = 0, backup = 0, bk_get = 0, bk_del = 0;
	long shares = 5, threshold = 3;
	const char *nonce = NULL, *target = "barrier", *pgp = NULL;
	struct cli_flag fl[] = {
		{"init", CLI_FLAG_BOOL, &init, "Start a rekey", NULL},
		{"cancel", CLI_FLAG_BOOL, &cancel, "Cancel the rekey", NULL},
		{"status", CLI_FLAG_BOOL, &status, "Show progress", NULL},
		{"key-shares", CLI_FLAG_INT, &shares, "New number of shares", NULL},
		{"n", CLI_FLAG_INT, &shares, "Alias of -key-shares", NULL},
		{"key-threshold", CLI_FLAG_INT, &threshold, "New threshold", NULL},
		{"t", CLI_FLAG_INT, &threshold, "Alias of -key-threshold", NULL},
		{"nonce", CLI_FLAG_STRING, &nonce, "Nonce of the rekey", NULL},
		{"target", CLI_FLAG_STRING, &target, "barrier or recovery", NULL},
		{"verify", CLI_FLAG_BOOL, &verify, "Verification flow", NULL},
		{"pgp-keys", CLI_FLAG_STRING, &pgp, "Comma-separated PGP public keys (files or base64)", NULL},
		{"backup", CLI_FLAG_BOOL, &backup, "Keep the PGP-encrypted new keys in sys/rekey/backup", NULL},
		{"backup-retrieve", CLI_FLAG_BOOL, &bk_get, "Read the backed-up keys", NULL},
		{"backup-delete", CLI_FLAG_BOOL, &bk_del, "Delete the backed-up keys", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 1, &rc))
		return rc;
	const char *base = strcmp(target, "recovery") == 0 ? "sys/rekey-recovery-key" : "sys/rekey";
	char rp[128], up[128];
	snprintf(rp, sizeof(rp), "%s/init", base);
	snprintf(up, sizeof(up), "%s/update", base);
	bool vflow = verify && !init; /* the new keys, to sys/rekey/verify */
	if (vflow) {
		snprintf(rp, sizeof(rp), "%s/verify", base);
		snprintf(up, sizeof(up), "%s/verify", base);
	}
	const struct attempt a = {rp, vflow ? "Error reading verification status" : "Error reading rekey status", up,
				  "Rekey operation nonce/key (will be hidden): ",
				  vflow ? print_verify_status : print_rekey_status};
	struct cli_resp r = {0};
	json_t *body = NULL, *st = NULL;
	if (bk_get || bk_del) {
		const char *bp = strcmp(target, "recovery") == 0 ? "sys/rekey/recovery-key-backup" : "sys/rekey/backup";
		struct cli_req rq = {.method = bk_del ? "DELETE" : "GET", .path = bp};
		if ((rc = cli_call(c, &rq, &r, bk_del ? "Error deleting backed-up unseal keys" : "Error retrieving backed-up unseal keys", 0)) == 0) {
			if (bk_del)
				fprintf(c->out, "Success! Delete stored keys (if they existed)\n");
			else
				rc = cli_output_data(c, r.json);
		}
		goto out;
	}
	if (cancel) {
		struct cli_req rq = {.method = "DELETE", .path = rp};
		if ((rc = cli_call(c, &rq, &r, "Error canceling rekey", 0)) == 0)
			fprintf(c->out, "Success! Canceled rekeying (if it was started)\n");
		goto out;
	}
	if (init) {
		body = json_pack("{s:I, s:I, s:b, s:b}", "secret_shares", (json_int_t)shares,
				 "secret_threshold", (json_int_t)threshold, "require_verification",
				 verify, "backup", backup);
		if (pgp) {
			json_t *keys = pgp_key_list(c, pgp);
			if (!keys) {
				rc = CLI_ELOCAL;
				goto out;
			}
			json_object_set_new(body, "pgp_keys", keys);
		}
		struct cli_req rq = {.method = "PUT", .path = rp, .body = body};
		if ((rc = cli_call(c, &rq, &r, "Error initializing rekey", 0)) == 0)
			rc = attempt_output(c, &a, r.json);
		goto out;
	}
	if (attempt_update(c, &a, argc, argv, status, nonce, &r, &st, &rc))
		goto out;
	if (strcmp(cli_format(c), "table") != 0) {
		rc = cli_output_data(c, r.json);
		goto out;
	}
	if (!json_is_true(json_object_get(r.json, "complete"))) {
		a.print(c, r.json);
		rc = CLI_OK;
		goto out;
	}
	if (vflow) {
		fprintf(c->out, "Success! Rekey verification was successful. The rekey operation is complete\n"
				"and the new keys are now active.\n");
		rc = CLI_OK;
		goto out;
	}
	json_t *keys = json_object_get(r.json, "keys_base64");
	if (!json_array_size(keys))
		keys = json_object_get(r.json, "keys");
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) fprintf(c->out, "Key %zu: %s\n", i + 1, json_string_value(k));
	fprintf(c->out, "\nOperation nonce: %s\n\n", js(r.json, "nonce"));
	/* The new threshold is the attempt's "t" (the final answer has none, as
	 * in Vault); -key-threshold only matters to -init. */
	long long t = ji(r.json, "t") ? ji(r.json, "t") : ji(st, "t") ? ji(st, "t") : threshold;
	fprintf(c->out,
		"Vault rekeyed with %zu key shares and a key threshold of %lld. Please securely\n"
		"distribute the key shares printed above. When Vault is re-sealed, restarted,\n"
		"or stopped, you must supply at least %lld of these keys to unseal it before it\n"
		"can start servicing requests.\n",
		json_array_size(keys), t, t);
	if (json_is_true(json_object_get(r.json, "verification_required")))
		fprintf(c->out,
			"\nRekey verification required: the new keys are not in effect until %lld of\n"
			"them are given to \"operator rekey -verify\" (verification nonce: %s).\n",
			t, js(r.json, "verification_nonce"));
	rc = CLI_OK;
out:
	json_decref(st);
	json_decref(body);
	cli_resp_free(&r);
	return rc;
}

static int print_key_status(struct cli *c, const json_t *resp)
{
	json_t *d = json_object_get(resp, "data");
	if (!json_is_object(d))
		d = (json_t *)resp;
	if (c->field)
		return cli_output_field(c, json_object_get(d, c->field), c->field);
	if (strcmp(cli_format(c), "table") != 0)
		return cli_output_data(c, d);
	char term[32], enc[32];
	snprintf(term, sizeof(term), "%lld", (long long)ji(d, "term"));
	snprintf(enc, sizeof(enc), "%lld", (long long)ji(d, "encryptions"));
	const char *rows[][2] = {
		{"Key", "Value"},
		{"Key Term", term},
		{"Install Time", js(d, "install_time")},
		{"Encryption Count", enc},
	};
	cli_table(c->out, &rows[0][0], 4, 2);
	return CLI_OK;
}

int cli_cmd_operator_key_status(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "GET", "sys/key-status", "Error reading key status", &r,
			    &rc))
		return rc;
	rc = print_key_status(c, r.json);
	cli_resp_free(&r);
	return rc;
}

int cli_cmd_operator_rotate(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "PUT", "sys/rotate", "Error rotating key", &r, &rc))
		return rc;
	cli_resp_free(&r);
	struct cli_req sq = {.method = "GET", .path = "sys/key-status"};
	if ((rc = cli_call(c, &sq, &r, "Error after rotating key", 0)) != 0)
		return rc;
	if (strcmp(cli_format(c), "table") == 0 && !c->field)
		fprintf(c->out, "Success! Rotated key\n\n");
	rc = print_key_status(c, r.json);
	cli_resp_free(&r);
	return rc;
}

/* ---- generate-root ---- */
static void print_gr_status(struct cli *c, const json_t *st)
{
	char prog[48], otpl[32];
	snprintf(prog, sizeof(prog), "%lld/%lld", (long long)ji(st, "progress"),
		 (long long)ji(st, "required"));
	snprintf(otpl, sizeof(otpl), "%lld", (long long)ji(st, "otp_length"));
	const char *rows[8][2];
	size_t n = 0;
	rows[n][0] = "Key", rows[n++][1] = "Value";
	rows[n][0] = "Nonce", rows[n++][1] = js(st, "nonce");
	rows[n][0] = "Started",
	rows[n++][1] = json_is_true(json_object_get(st, "started")) ? "true" : "false";
	rows[n][0] = "Progress", rows[n++][1] = prog;
	rows[n][0] = "Complete",
	rows[n++][1] = json_is_true(json_object_get(st, "complete")) ? "true" : "false";
	if (*js(st, "encoded_token"))
		rows[n][0] = "Encoded Token", rows[n++][1] = js(st, "encoded_token");
	rows[n][0] = "OTP Length", rows[n++][1] = otpl;
	cli_table(c->out, &rows[0][0], n, 2);
}

static char *gen_otp(size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char *s = malloc(len + 1);
	if (!s)
		abort();
	for (size_t i = 0; i < len;) {
		unsigned char b;
		if (RAND_bytes(&b, 1) != 1)
			abort();
		if (b >= 248) /* 248 = 4*62: reject to keep the draw uniform */
			continue;
		s[i++] = alphabet[b % 62];
	}
	s[len] = '\0';
	return s;
}

int cli_cmd_operator_generate_root(struct cli *c, int argc, char **argv)
{
	int rc, init = 0, cancel = 0, status = 0, genotp = 0, drtoken = 0;
	const char *otp = NULL, *decode = NULL, *nonce = NULL;
	struct cli_flag fl[] = {
		{"init", CLI_FLAG_BOOL, &init, "Start generating a root token", NULL},
		{"cancel", CLI_FLAG_BOOL, &cancel, "Cancel the attempt", NULL},
		{"status", CLI_FLAG_BOOL, &status, "Show progress", NULL},
		{"generate-otp", CLI_FLAG_BOOL, &genotp, "Print a fresh OTP", NULL},
		{"otp", CLI_FLAG_STRING, &otp, "OTP for -init and -decode", NULL},
		{"decode", CLI_FLAG_STRING, &decode, "Encoded token to decode", NULL},
		{"nonce", CLI_FLAG_STRING, &nonce, "Nonce of the attempt", NULL},
		{"dr-token", CLI_FLAG_BOOL, &drtoken, "DR operation token (unsupported)", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 1, &rc))
		return rc;
	struct cli_resp r = {0};
	json_t *body = NULL;
	const char *ap = "sys/generate-root/attempt";
	const struct attempt a = {ap, "Error getting root generation status",
				  "sys/generate-root/update", "Unseal Key (will be hidden): ",
				  print_gr_status};
	if (genotp) {
		struct cli_req rq = {.method = "GET", .path = ap};
		if ((rc = cli_call(c, &rq, &r, "Error getting root generation status", 0)) != 0)
			goto out;
		int64_t len = ji(r.json, "otp_length");
		if (len <= 0)
			len = 28;
		char *o = gen_otp((size_t)len);
		fprintf(c->out, "%s", o);
		if (c->out_tty)
			fputc('\n', c->out);
		free(o);
		rc = CLI_OK;
		goto out;
	}
	if (decode) {
		if (!otp) {
			rc = cli_fail(c, CLI_ELOCAL, "Missing -otp flag (required for -decode)");
			goto out;
		}
		/* token = base64(raw, unpadded) XOR otp */
		size_t n = strlen(decode);
		char *pad = malloc(n + 4);
		unsigned char *raw = malloc(n + 4);
		if (!pad || !raw)
			abort();
		memcpy(pad, decode, n + 1);
		while (n % 4)
			pad[n++] = '=';
		int l = EVP_DecodeBlock(raw, (unsigned char *)pad, (int)n);
		size_t pads = 0;
		for (size_t i = n; i > 0 && pad[i - 1] == '='; i--)
			pads++;
		free(pad);
		if (l < 0 || (size_t)l - pads != strlen(otp)) {
			free(raw);
			rc = cli_fail(c, CLI_ELOCAL, "Error decoding root token: length mismatch with the OTP");
			goto out;
		}
		size_t tl = (size_t)l - pads;
		for (size_t i = 0; i < tl; i++)
			raw[i] ^= (unsigned char)otp[i];
		fwrite(raw, 1, tl, c->out);
		if (c->out_tty)
			fputc('\n', c->out);
		explicit_bzero(raw, tl);
		free(raw);
		rc = CLI_OK;
		goto out;
	}
	if (cancel) {
		struct cli_req rq = {.method = "DELETE", .path = ap};
		if ((rc = cli_call(c, &rq, &r, "Error canceling root token generation", 0)) == 0)
			fprintf(c->out, "Success! Root token generation canceled (if it was started)\n");
		goto out;
	}
	if (init) {
		body = json_object();
		if (otp)
			json_object_set_new(body, "otp", json_string(otp));
		struct cli_req rq = {.method = "PUT", .path = ap, .body = body};
		if ((rc = cli_call(c, &rq, &r, "Error initializing root generation", 0)) != 0)
			goto out;
		rc = attempt_output(c, &a, r.json);
		if (!otp && *js(r.json, "otp") && strcmp(cli_format(c), "table") == 0)
			fprintf(c->out, "\nOTP: %s\n", js(r.json, "otp"));
		goto out;
	}
	if (attempt_update(c, &a, argc, argv, status, nonce, &r, NULL, &rc) == 0)
		rc = attempt_output(c, &a, r.json);
out:
	json_decref(body);
	cli_resp_free(&r);
	return rc;
}

/* ---- raft snapshots ---- */
int cli_cmd_operator_raft_save(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	/* write to a temp file, rename on success: never leave a partial snapshot */
	size_t plen = strlen(argv[0]);
	char *tmp = malloc(plen + 16);
	if (!tmp)
		abort();
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", argv[0]);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		rc = cli_fail(c, CLI_ELOCAL, "Error opening output file: cannot create %s", argv[0]);
		free(tmp);
		return rc;
	}
	FILE *f = fdopen(fd, "wb");
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = "sys/storage/raft/snapshot", .sink = f};
	long saved_timeout = c->timeout_s;
	c->timeout_s = 0x7fffffff; /* snapshots can be large */
	rc = cli_call(c, &rq, &r, "Error taking the snapshot", 0);
	c->timeout_s = saved_timeout;
	int bad = fclose(f) != 0;
	if (rc == 0 && bad)
		rc = cli_fail(c, CLI_ELOCAL, "Error writing snapshot file %s", argv[0]);
	if (rc == 0 && rename(tmp, argv[0]) != 0)
		rc = cli_fail(c, CLI_ELOCAL, "Error renaming snapshot file to %s", argv[0]);
	if (rc)
		unlink(tmp);
	else
		cli_resp_free(&r);
	free(tmp);
	return rc;
}

int cli_cmd_operator_raft_restore(struct cli *c, int argc, char **argv)
{
	int rc, force = 0;
	struct cli_flag fl[] = {{"force", CLI_FLAG_BOOL, &force, "Restore across keyrings", NULL},
				{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *data = NULL;
	size_t len = 0;
	struct verr e = {0};
	void *map = MAP_FAILED;
	if (strcmp(argv[0], "-") != 0) {
		/* a file is mapped, not read: large snapshots cost page cache,
		 * not this process's memory */
		int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
			map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (fd >= 0)
			close(fd);
		if (map != MAP_FAILED) {
			data = map;
			len = (size_t)st.st_size;
		}
	}
	if (map == MAP_FAILED && cli_read_file(&data, &len, argv[0], stdin, &e))
		return cli_fail(c, CLI_ELOCAL, "Error opening snapshot file: %s", e.msg);
	struct cli_resp r;
	struct cli_req rq = {.method = "POST",
			     .path = force ? "sys/storage/raft/snapshot-force"
					   : "sys/storage/raft/snapshot",
			     .raw = data,
			     .raw_len = len};
	long saved_timeout = c->timeout_s;
	c->timeout_s = 0x7fffffff;
	rc = cli_call(c, &rq, &r, "Error installing the snapshot", 0);
	c->timeout_s = saved_timeout;
	if (rc == 0)
		cli_resp_free(&r);
	if (map != MAP_FAILED)
		munmap(map, len);
	else
		free(data);
	return rc;
}
