/*
 * cli.h - the `coffer` client: internal API shared by the files of src/cli/.
 *
 * The client speaks to a server only over HTTP(S) (libcurl + jansson); it
 * includes nothing from core/, http/ or server code. Grammar, flags, output
 * and exit codes follow HashiCorp Vault's CLI so runbooks work with `vault`
 * replaced by `coffer`:
 *   exit 0  success
 *   exit 1  local error: bad flag, wrong number of arguments, bad file
 *   exit 2  remote error: the server answered with an error, TLS or
 *           connection failure (`status` uses 1 for errors, 2 for sealed)
 *   exit 127 unknown top-level command (as Vault's command dispatcher)
 *
 * Layout: args.c (flag and k=v parsing), http.c (requests), output.c
 * (table/json/yaml/field), suggest.c (Levenshtein), audit_chain.c (log chain
 * verifier), main.c (dispatch, help), cmd_*.c (one file per command group).
 *
 * Single-threaded; a `struct cli` lives for one command invocation.
 */
#ifndef COFFER_CLI_CLI_H
#define COFFER_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "util/verr.h"

#define CLI_VERSION_STRING "Coffer v0.1.0"
#define CLI_DEFAULT_ADDR "https://127.0.0.1:8200"

/* Exit codes (see the top of this file). */
enum { CLI_OK = 0, CLI_ELOCAL = 1, CLI_EREMOTE = 2, CLI_EUNKNOWN = 127 };

/* ---- repeatable string flags (-policy=a -policy=b) ---- */
struct cli_strlist {
	char **v;
	size_t n;
};
void cli_strlist_add(struct cli_strlist *l, const char *s);
void cli_strlist_clear(struct cli_strlist *l);
/* The k=v entries of a CLI_FLAG_KV list as a JSON object of strings (a key
 * given twice keeps the last value). */
json_t *cli_strlist_object(const struct cli_strlist *l);

/* ---- flags ---- */
enum cli_flag_type {
	CLI_FLAG_BOOL,   /* int *: -x, -x=true|false */
	CLI_FLAG_STRING, /* const char **: points into argv */
	CLI_FLAG_INT,    /* long * */
	CLI_FLAG_LIST,   /* struct cli_strlist *: repeatable */
	CLI_FLAG_KV,     /* struct cli_strlist *: repeatable k=v */
};

struct cli_flag {
	const char *name;
	enum cli_flag_type type;
	void *dst;
	const char *usage;
	int *set; /* optional: set to 1 when the flag appears */
};

/* Per-invocation client state: connection settings from the environment,
 * overridden by common flags, and where output goes (tests swap the FILEs). */
struct cli {
	const char *prog;
	const char *addr;
	const char *token;
	const char *ca_cert;
	const char *ca_path;
	const char *client_cert;
	const char *client_key;
	const char *tls_server_name;
	const char *namespace_;
	const char *format; /* table|json|yaml|yml */
	const char *field;
	const char *wrap_ttl; /* -wrap-ttl / VAULT_WRAP_TTL: X-Vault-Wrap-TTL */
	int skip_verify;
	int non_interactive;
	int detailed;
	long timeout_s;
	FILE *out;
	FILE *err;
	int out_tty; /* stdout is a terminal: -field adds a newline */
	char *token_owned; /* token read from the token helper */
	struct cli_flag common[16];
	size_t ncommon;
};

/* Fill c from the environment (VAULT_ADDR, VAULT_TOKEN, ...); reads the token
 * helper file when VAULT_TOKEN is unset. Never fails. */
void cli_init(struct cli *c, const char *prog);
void cli_cleanup(struct cli *c);

/* Parse flags Go-style from argv[0..argc): "-f", "--f", "-f=v", "-f v" (not
 * for bools). Stops at the first non-flag argument, "-" or "--". Command
 * flags are looked up first, then the common flags of c (c may be NULL).
 * On success *optind is the index of the first positional argument.
 * Returns 0, or VERR_INVALID with a message like Go's flag package. A flag
 * after the positionals earns a warning on c->err, like Vault. */
int cli_flags_parse(struct cli *c, const struct cli_flag *flags, int argc, char **argv,
		    int *optind, struct verr *err);

/* Parse a Vault-style bool ("1", "t", "true", "TRUE", "0", "f", "false"...):
 * 1/0, or -1 if not a bool. */
int cli_parse_bool(const char *s);

/* Build a JSON object from k=v arguments like Vault's kvbuilder:
 *   k=v        string value
 *   k=@file    the contents of file
 *   k=-        the whole of stdin (only once)
 *   -          a JSON object read from stdin, merged in
 *   @file      a JSON object read from file, merged in
 * A key given twice becomes an array. in is stdin (tests pass a FILE). */
int cli_kv_parse(json_t **out, int argc, char **argv, FILE *in, struct verr *err);

/* Read a whole file ("-" = in) into a NUL-terminated malloc'd buffer. */
int cli_read_file(char **out, size_t *len, const char *path, FILE *in, struct verr *err);

/* ---- HTTP ---- */
struct cli_resp {
	long status;
	char *body;
	size_t len;
	json_t *json;   /* parsed body, NULL if empty or not JSON */
	char url[4096];
	char method[16];
};
void cli_resp_free(struct cli_resp *r);

struct cli_req {
	const char *method;     /* GET PUT POST DELETE PATCH LIST */
	const char *path;       /* below /v1/, no leading slash needed */
	const char *query;      /* "version=2", NULL for none */
	json_t *body;           /* JSON body or NULL */
	const char *raw;        /* raw body (snapshot restore) */
	size_t raw_len;
	const char *content_type; /* overrides application/json */
	FILE *sink;             /* if set, a 2xx body is streamed here */
	const char *token;      /* overrides c->token; "" sends none */
	int no_token;
	int no_wrap;            /* never send X-Vault-Wrap-TTL (kv's preflight) */
};

/* Perform a request. Returns 0 when a response arrived (any status: look at
 * out->status), VERR_UNAVAILABLE when no response (connection, TLS), with
 * err->msg like `Get "URL": reason`. */
int cli_http(struct cli *c, const struct cli_req *rq, struct cli_resp *out, struct verr *err);

/* Convenience: err message for a non-2xx response in Vault's format:
 * "Error making API request.\n\nURL: PUT ...\nCode: 403. Errors:\n\n* ..." */
void cli_api_error_text(char *buf, size_t cap, const struct cli_resp *r);

/* Do a request and, on failure, print "<what>: <error>" to c->err and return
 * the exit code (2). For 2xx returns 0. If allow_404 and the status is 404,
 * returns 0 and sets out->status (the caller handles "No value found"). */
int cli_call(struct cli *c, const struct cli_req *rq, struct cli_resp *out, const char *what,
	     int allow_404);
/* A whole command that takes no flags or arguments and makes one request:
 * cli_parse_args(0, 0), then cli_call(method path). Returns 0 with the 2xx
 * response in *out (the caller frees it), or 1 with the error printed and
 * the exit code in *rc. */
int cli_call_noargs(struct cli *c, int argc, char **argv, const char *method, const char *path,
		    const char *what, struct cli_resp *out, int *rc);

/* ---- output ---- */
/* The format in effect: c->format or "table"; returns NULL (and prints) if
 * it is not one we know. */
const char *cli_format(struct cli *c);
int cli_format_ok(struct cli *c);
/* Go's %v of a JSON value (strings bare, arrays "[a b]", maps "map[k:v]",
 * null "<nil>"), appended to a malloc'd string the caller frees. */
char *cli_fmt_value(const json_t *v);
/* Vault's humanised duration: 2764800 -> "768h", 5400 -> "1h30m", 0 -> "0s". */
void cli_fmt_duration(char *buf, size_t cap, int64_t secs);
/* Key names Vault prints as durations (ttl, *_ttl, period, ...). */
int cli_looks_like_duration(const char *k);
/* Columns aligned like columnize: rows of cells, first row is the header
 * and gets a "---" underline; empty cells print as "n/a". */
void cli_table(FILE *f, const char *const *cells, size_t nrows, size_t ncols);
/* Key/Value table of an object (sorted keys, durations humanised). */
void cli_out_map(FILE *f, const json_t *obj);
/* A Vault secret envelope as a table (lease, auth, wrap, data rows). */
void cli_out_secret_table(FILE *f, const json_t *resp);
void cli_out_warnings(struct cli *c, const json_t *resp);
/* JSON pretty-printed like Go's MarshalIndent("", "  "), plus newline. */
void cli_out_json(FILE *f, const json_t *v);
/* YAML like ghodss/yaml (sorted keys, block style), plus newline. */
void cli_out_yaml(FILE *f, const json_t *v);
/* Print data in the chosen format: table uses table_fn(f, data) or a
 * Key/Value map; json/yaml print data as is. Returns an exit code. */
int cli_output_data(struct cli *c, const json_t *data);
/* Print a whole secret envelope: honours -field (Vault's RawField lookup),
 * -format; table prints warnings then the secret table. */
int cli_output_secret(struct cli *c, const json_t *resp);
/* List keys: table "Keys\n----\n..." (sorted), json/yaml the array. */
int cli_output_list(struct cli *c, const json_t *resp);
/* -field: print one value raw (no newline unless stdout is a tty), or as
 * json/yaml for those formats. 1 if absent (error printed). */
int cli_output_field(struct cli *c, const json_t *val, const char *field);
/* "== Title ==" padded like Vault's kv output. */
void cli_pad_header(char *buf, size_t cap, const char *title, size_t total_len);

/* ---- suggestion ---- */
size_t cli_levenshtein(const char *a, const char *b);
/* Nearest candidate within distance max(2, len/3), or NULL. */
const char *cli_suggest(const char *word, const char *const *cands, size_t n);

/* ---- audit chain ---- */
enum cli_chain_problem {
	CLI_CHAIN_OK = 0,
	CLI_CHAIN_ALTERED,
	CLI_CHAIN_REMOVED,
	CLI_CHAIN_INSERTED,
	CLI_CHAIN_REORDERED,
	CLI_CHAIN_MALFORMED,
};
struct cli_chain_result {
	enum cli_chain_problem problem;
	size_t entries; /* lines checked (all, when ok) */
	size_t line;    /* 1-based first bad line */
	size_t failures; /* failure entries the server recorded (verified) */
	size_t torn;     /* torn lines they account for (not tampering) */
	char reason[160];
};
/* Verify a tamper-evident audit log held in buf (see docs/cli.md, "audit
 * verify"). Never fails: the verdict is in *out. */
void cli_chain_verify(struct cli_chain_result *out, const unsigned char *key, size_t keylen,
		      const char *buf, size_t len);
/* Chain value for one line: hex(HMAC-SHA256(key, prev_hex || stripped)).
 * hex must hold 65 bytes. Used by the verifier and by tests. */
void cli_chain_mac(char hex[65], const unsigned char *key, size_t keylen, const char *prev_hex,
		   const char *stripped, size_t stripped_len);

/* ---- commands ---- */
typedef int cli_cmd_fn(struct cli *c, int argc, char **argv);
struct cli_cmd {
	const char *name; /* "kv put", "operator raft snapshot save" */
	cli_cmd_fn *run;
	const char *synopsis;
	const char *help; /* usage and examples */
};
extern const struct cli_cmd cli_cmds[];
extern const size_t cli_ncmds;

/* Helpers for command implementations. */
/* Print "<msg>" to c->err and return code. */
int cli_fail(struct cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Parse flags for a command; on error print it (and the usage hint) and
 * return 1 via *rc. Returns 1 if the caller should return *rc. */
int cli_parse_cmd(struct cli *c, const struct cli_flag *flags, int argc, char **argv, int *optind,
		  int *rc);
/* Check positional count in [min,max] (max<0: unbounded); prints Vault's
 * "Too many arguments (expected N, got M)" / "Not enough arguments". */
int cli_check_args(struct cli *c, int n, int min, int max);
/* The usual start of a command: cli_parse_cmd, then drop the flags from
 * argc/argv (both passed by address) and cli_check_args(min, max) on what
 * is left. Returns 1 (error printed, *rc = the exit code) when the caller
 * should return *rc; 0 with *rc = CLI_OK otherwise. */
int cli_parse_args(struct cli *c, const struct cli_flag *flags, int *argc, char ***argv, int min,
		   int max, int *rc);
/* Prompt on the terminal without echo (or read a line from stdin when it is
 * not a tty). Returns malloc'd string, NULL on EOF. */
char *cli_prompt_secret(struct cli *c, const char *prompt);
/* Wipe and free a NUL-terminated secret (a key share, a token); NULL is a
 * no-op. */
void cli_free_secret(char *s);
/* Token helper (~/.vault-token). */
int cli_token_helper_store(const char *token, struct verr *err);
char *cli_token_helper_get(void);
/* Strip leading/trailing slashes into a malloc'd copy, with a trailing "/"
 * when add_slash. */
char *cli_sanitize_path(const char *p, int add_slash);

int cli_cmd_status(struct cli *c, int argc, char **argv);
int cli_cmd_operator_init(struct cli *c, int argc, char **argv);
int cli_cmd_operator_unseal(struct cli *c, int argc, char **argv);
int cli_cmd_operator_seal(struct cli *c, int argc, char **argv);
int cli_cmd_operator_rekey(struct cli *c, int argc, char **argv);
int cli_cmd_operator_rotate(struct cli *c, int argc, char **argv);
int cli_cmd_operator_key_status(struct cli *c, int argc, char **argv);
int cli_cmd_operator_generate_root(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_save(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_restore(struct cli *c, int argc, char **argv);
/* cmd_raft.c */
int cli_cmd_operator_raft_join(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_list_peers(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_remove_peer(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_inspect(struct cli *c, int argc, char **argv);
int cli_cmd_operator_raft_autopilot_state(struct cli *c, int argc, char **argv);

int cli_cmd_read(struct cli *c, int argc, char **argv);
int cli_cmd_write(struct cli *c, int argc, char **argv);
int cli_cmd_list(struct cli *c, int argc, char **argv);
int cli_cmd_delete(struct cli *c, int argc, char **argv);
int cli_cmd_patch(struct cli *c, int argc, char **argv);
int cli_cmd_path_help(struct cli *c, int argc, char **argv);

int cli_cmd_kv_get(struct cli *c, int argc, char **argv);
int cli_cmd_kv_put(struct cli *c, int argc, char **argv);
int cli_cmd_kv_patch(struct cli *c, int argc, char **argv);
int cli_cmd_kv_delete(struct cli *c, int argc, char **argv);
int cli_cmd_kv_undelete(struct cli *c, int argc, char **argv);
int cli_cmd_kv_destroy(struct cli *c, int argc, char **argv);
int cli_cmd_kv_list(struct cli *c, int argc, char **argv);
int cli_cmd_kv_metadata_get(struct cli *c, int argc, char **argv);
int cli_cmd_kv_metadata_put(struct cli *c, int argc, char **argv);
int cli_cmd_kv_metadata_delete(struct cli *c, int argc, char **argv);
int cli_cmd_kv_rollback(struct cli *c, int argc, char **argv);

int cli_cmd_secrets_enable(struct cli *c, int argc, char **argv);
int cli_cmd_secrets_disable(struct cli *c, int argc, char **argv);
int cli_cmd_secrets_list(struct cli *c, int argc, char **argv);
int cli_cmd_secrets_tune(struct cli *c, int argc, char **argv);
int cli_cmd_secrets_move(struct cli *c, int argc, char **argv);
int cli_cmd_auth_enable(struct cli *c, int argc, char **argv);
int cli_cmd_auth_disable(struct cli *c, int argc, char **argv);
int cli_cmd_auth_list(struct cli *c, int argc, char **argv);
int cli_cmd_auth_tune(struct cli *c, int argc, char **argv);
int cli_cmd_policy_write(struct cli *c, int argc, char **argv);
int cli_cmd_policy_read(struct cli *c, int argc, char **argv);
int cli_cmd_policy_list(struct cli *c, int argc, char **argv);
int cli_cmd_policy_delete(struct cli *c, int argc, char **argv);
int cli_cmd_policy_fmt(struct cli *c, int argc, char **argv);
int cli_cmd_audit_enable(struct cli *c, int argc, char **argv);
int cli_cmd_audit_disable(struct cli *c, int argc, char **argv);
int cli_cmd_audit_list(struct cli *c, int argc, char **argv);
int cli_cmd_audit_verify(struct cli *c, int argc, char **argv);

int cli_cmd_login(struct cli *c, int argc, char **argv);
int cli_cmd_token_create(struct cli *c, int argc, char **argv);
int cli_cmd_token_lookup(struct cli *c, int argc, char **argv);
/* cmd_wrapping.c */
int cli_cmd_unwrap(struct cli *c, int argc, char **argv);
int cli_cmd_token_renew(struct cli *c, int argc, char **argv);
int cli_cmd_token_revoke(struct cli *c, int argc, char **argv);
int cli_cmd_token_capabilities(struct cli *c, int argc, char **argv);
int cli_cmd_lease_lookup(struct cli *c, int argc, char **argv);
int cli_cmd_lease_renew(struct cli *c, int argc, char **argv);
int cli_cmd_lease_revoke(struct cli *c, int argc, char **argv);
int cli_cmd_print_token(struct cli *c, int argc, char **argv);

#endif
