/*
 * cmd_token.c - identity commands: `login` (token, userpass, approle,
 * kubernetes and any other method taking k=v credentials), `token ...`,
 * `lease ...` and `print token`. login stores the token in the token helper
 * file ~/.vault-token unless -no-store/-token-only.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- login ---- */
static void print_login_success(struct cli *c, int stored)
{
	if (stored)
		fprintf(c->out,
			"Success! You are now authenticated. The token information displayed "
			"below\nis already stored in the token helper. You do NOT need to run "
			"\"%s login\"\nagain. Future requests will automatically use this token.\n\n",
			c->prog);
	else
		fprintf(c->out,
			"Success! You are now authenticated. The token information displayed "
			"below\nis NOT stored in the token helper. You will need to provide this "
			"token\nwith future requests (VAULT_TOKEN or -token).\n\n");
}

/* lookup-self data turned into an auth block, as Vault's token login does. */
static json_t *auth_from_lookup(const char *token, json_t *resp)
{
	json_t *d = json_object_get(resp, "data");
	json_t *pol = json_object_get(d, "policies");
	json_t *auth = json_pack("{s:s, s:s, s:O, s:O, s:O, s:I, s:b}", "client_token", token,
				 "accessor", json_string_value(json_object_get(d, "accessor"))
						     ? json_string_value(json_object_get(d, "accessor"))
						     : "",
				 "policies", pol ? pol : json_null(), "token_policies",
				 pol ? pol : json_null(), "identity_policies",
				 json_object_get(d, "identity_policies")
					 ? json_object_get(d, "identity_policies")
					 : json_null(),
				 "lease_duration", json_integer_value(json_object_get(d, "ttl")),
				 "renewable", json_is_true(json_object_get(d, "renewable")));
	json_t *meta = json_object_get(d, "meta");
	if (json_is_object(meta))
		json_object_set(auth, "metadata", meta);
	json_t *out = json_deep_copy(resp);
	json_object_set_new(out, "auth", auth);
	json_object_set_new(out, "data", json_null());
	return out;
}

int cli_cmd_login(struct cli *c, int argc, char **argv)
{
	int rc, no_store = 0, token_only = 0, no_print = 0;
	const char *method = "token", *mpath = NULL;
	struct cli_flag fl[] = {
		{"method", CLI_FLAG_STRING, &method, "Auth method type", NULL},
		{"path", CLI_FLAG_STRING, &mpath, "Mount path of the auth method", NULL},
		{"no-store", CLI_FLAG_BOOL, &no_store, "Do not store the token", NULL},
		{"token-only", CLI_FLAG_BOOL, &token_only, "Print only the token", NULL},
		{"no-print", CLI_FLAG_BOOL, &no_print, "Print nothing on success", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, -1, &rc))
		return rc;
	if (token_only)
		no_store = 1;
	json_t *shown = NULL, *body = NULL;
	char *secret = NULL;
	const char *newtok = NULL;
	struct cli_resp r = {0};
	if (getenv("VAULT_TOKEN") && *getenv("VAULT_TOKEN") && !no_store)
		fprintf(c->err,
			"WARNING! The VAULT_TOKEN environment variable is set! The value of this\n"
			"variable will take precedence; if this is unwanted please unset VAULT_TOKEN\n"
			"or update its value accordingly.\n\n");
	if (strcmp(method, "token") == 0) {
		const char *tok = NULL;
		if (argc > 1)
			return cli_fail(c, CLI_ELOCAL, "Too many arguments (expected 0 or 1, got %d)", argc);
		if (argc == 1 && strcmp(argv[0], "-") != 0 && !strchr(argv[0], '=')) {
			tok = argv[0];
		} else if (argc == 1 && strncmp(argv[0], "token=", 6) == 0) {
			tok = argv[0] + 6;
		} else {
			if (c->non_interactive && !(argc == 1 && strcmp(argv[0], "-") == 0))
				return cli_fail(c, CLI_ELOCAL, "No token given and -non-interactive is set");
			secret = cli_prompt_secret(c, "Token (will be hidden): ");
			if (!secret || !*secret) {
				free(secret);
				return cli_fail(c, CLI_ELOCAL, "Error authenticating: no token provided");
			}
			tok = secret;
		}
		struct cli_req rq = {.method = "GET", .path = "auth/token/lookup-self", .token = tok};
		rc = cli_call(c, &rq, &r, "Error authenticating", 0);
		if (rc)
			goto out;
		shown = auth_from_lookup(tok, r.json);
		newtok = tok;
	} else {
		struct verr e = {0};
		if (cli_kv_parse(&body, argc, argv, stdin, &e)) {
			rc = cli_fail(c, CLI_ELOCAL, "Error parsing configuration: %s", e.msg);
			goto out;
		}
		char *mp = cli_sanitize_path(mpath ? mpath : method, 0);
		char rp[2048];
		if (strcmp(method, "userpass") == 0 || strcmp(method, "ldap") == 0 ||
		    strcmp(method, "okta") == 0 || strcmp(method, "radius") == 0) {
			const char *user = json_string_value(json_object_get(body, "username"));
			if (!user) {
				free(mp);
				rc = cli_fail(c, CLI_ELOCAL, "Error authenticating: 'username' must be specified");
				goto out;
			}
			snprintf(rp, sizeof(rp), "auth/%s/login/%s", mp, user);
			if (!json_object_get(body, "password")) {
				if (c->non_interactive) {
					free(mp);
					rc = cli_fail(c, CLI_ELOCAL, "Error authenticating: 'password' must be specified");
					goto out;
				}
				secret = cli_prompt_secret(c, "Password (will be hidden): ");
				if (!secret) {
					free(mp);
					rc = cli_fail(c, CLI_ELOCAL, "Error authenticating: no password given");
					goto out;
				}
				json_object_set_new(body, "password", json_string(secret));
			}
			json_object_del(body, "username");
		} else {
			snprintf(rp, sizeof(rp), "auth/%s/login", mp);
		}
		free(mp);
		struct cli_req rq = {.method = "PUT", .path = rp, .body = body, .no_token = 1};
		rc = cli_call(c, &rq, &r, "Error authenticating", 0);
		if (rc)
			goto out;
		/* -wrap-ttl: the token is inside the wrapping token; print that,
		 * store nothing (Vault's login) */
		if (json_is_object(json_object_get(r.json, "wrap_info"))) {
			rc = cli_output_secret(c, r.json);
			goto out;
		}
		newtok = json_string_value(json_object_get(json_object_get(r.json, "auth"), "client_token"));
		if (!newtok) {
			rc = cli_fail(c, CLI_EREMOTE, "Error authenticating: no auth information returned");
			goto out;
		}
		shown = json_incref(r.json);
	}
	if (!no_store) {
		struct verr e = {0};
		if (cli_token_helper_store(newtok, &e)) {
			rc = cli_fail(c, CLI_ELOCAL, "Error storing token: %s", e.msg);
			goto out;
		}
	}
	if (token_only) {
		fputs(newtok, c->out);
		if (c->out_tty)
			fputc('\n', c->out);
		rc = CLI_OK;
		goto out;
	}
	if (no_print) {
		rc = CLI_OK;
		goto out;
	}
	if (c->field || strcmp(cli_format(c), "table") != 0) {
		rc = cli_output_secret(c, shown);
		goto out;
	}
	print_login_success(c, !no_store);
	rc = cli_output_secret(c, shown);
out:
	cli_free_secret(secret);
	json_decref(shown);
	json_decref(body);
	cli_resp_free(&r);
	return rc;
}

/* ---- token ---- */
static int token_request(struct cli *c, const char *method, const char *path, json_t *body,
			 const char *what, const char *okmsg)
{
	struct cli_resp r;
	struct cli_req rq = {.method = method, .path = path, .body = body};
	int rc = cli_call(c, &rq, &r, what, 0);
	if (rc)
		return rc;
	if (r.json && json_is_object(json_object_get(r.json, "wrap_info")))
		rc = cli_output_secret(c, r.json); /* -wrap-ttl */
	else if (r.json && (json_is_object(json_object_get(r.json, "data")) ||
			    json_is_object(json_object_get(r.json, "auth"))) && !okmsg)
		rc = cli_output_secret(c, r.json);
	else if (okmsg)
		fprintf(c->out, "%s\n", okmsg);
	cli_resp_free(&r);
	return rc;
}

int cli_cmd_token_create(struct cli *c, int argc, char **argv)
{
	int rc, orphan = 0, no_default = 0, renewable = 1, renew_set = 0;
	const char *ttl = NULL, *emt = NULL, *period = NULL, *display = NULL, *role = NULL,
		   *type = NULL, *id = NULL, *alias = NULL;
	long uses = 0;
	struct cli_strlist pol = {0}, meta = {0};
	struct cli_flag fl[] = {
		{"policy", CLI_FLAG_LIST, &pol, "Policy (repeatable)", NULL},
		{"ttl", CLI_FLAG_STRING, &ttl, "Initial TTL", NULL},
		{"explicit-max-ttl", CLI_FLAG_STRING, &emt, "Hard max TTL", NULL},
		{"period", CLI_FLAG_STRING, &period, "Periodic token", NULL},
		{"orphan", CLI_FLAG_BOOL, &orphan, "No parent", NULL},
		{"no-default-policy", CLI_FLAG_BOOL, &no_default, "Skip default policy", NULL},
		{"display-name", CLI_FLAG_STRING, &display, "Display name", NULL},
		{"use-limit", CLI_FLAG_INT, &uses, "Number of uses", NULL},
		{"renewable", CLI_FLAG_BOOL, &renewable, "Renewable", &renew_set},
		{"metadata", CLI_FLAG_KV, &meta, "k=v (repeatable)", NULL},
		{"role", CLI_FLAG_STRING, &role, "Token role", NULL},
		{"type", CLI_FLAG_STRING, &type, "service or batch", NULL},
		{"id", CLI_FLAG_STRING, &id, "Token value (root only)", NULL},
		{"entity-alias", CLI_FLAG_STRING, &alias, "Entity alias", NULL},
		{0},
	};
	json_t *body = NULL;
	if (cli_parse_args(c, fl, &argc, &argv, 0, 0, &rc))
		goto out;
	body = json_object();
	if (id)
		json_object_set_new(body, "id", json_string(id));
	if (pol.n) {
		json_t *a = json_array();
		for (size_t i = 0; i < pol.n; i++) {
			/* Vault accepts comma-separated values too */
			const char *s = pol.v[i];
			while (*s) {
				const char *e = strchr(s, ',');
				size_t n = e ? (size_t)(e - s) : strlen(s);
				if (n)
					json_array_append_new(a, json_stringn(s, n));
				s += n + (e ? 1 : 0);
			}
		}
		json_object_set_new(body, "policies", a);
	}
	if (ttl)
		json_object_set_new(body, "ttl", json_string(ttl));
	if (emt)
		json_object_set_new(body, "explicit_max_ttl", json_string(emt));
	if (period)
		json_object_set_new(body, "period", json_string(period));
	if (no_default)
		json_object_set_new(body, "no_default_policy", json_true());
	if (display)
		json_object_set_new(body, "display_name", json_string(display));
	if (uses)
		json_object_set_new(body, "num_uses", json_integer(uses));
	json_object_set_new(body, "renewable", json_boolean(renewable));
	if (type)
		json_object_set_new(body, "type", json_string(type));
	if (alias)
		json_object_set_new(body, "entity_alias", json_string(alias));
	if (meta.n)
		json_object_set_new(body, "meta", cli_strlist_object(&meta));
	char rp[1200];
	if (role)
		snprintf(rp, sizeof(rp), "auth/token/create/%s", role);
	else
		snprintf(rp, sizeof(rp), "auth/token/%s", orphan ? "create-orphan" : "create");
	rc = token_request(c, "POST", rp, body, "Error creating token", NULL);
out:
	json_decref(body);
	cli_strlist_clear(&pol);
	cli_strlist_clear(&meta);
	return rc;
}

int cli_cmd_token_lookup(struct cli *c, int argc, char **argv)
{
	int rc, accessor = 0;
	struct cli_flag fl[] = {{"accessor", CLI_FLAG_BOOL, &accessor, "Argument is an accessor", NULL},
				{0}};
	if (cli_parse_args(c, fl, &argc, &argv, accessor ? 1 : 0, 1, &rc))
		return rc;
	json_t *body = NULL;
	const char *path = "auth/token/lookup-self", *method = "GET";
	if (accessor) {
		body = json_pack("{s:s}", "accessor", argv[0]);
		path = "auth/token/lookup-accessor";
		method = "POST";
	} else if (argc == 1) {
		body = json_pack("{s:s}", "token", argv[0]);
		path = "auth/token/lookup";
		method = "POST";
	}
	rc = token_request(c, method, path, body, "Error looking up token", NULL);
	json_decref(body);
	return rc;
}

int cli_cmd_token_renew(struct cli *c, int argc, char **argv)
{
	int rc, accessor = 0;
	const char *inc = NULL;
	struct cli_flag fl[] = {
		{"increment", CLI_FLAG_STRING, &inc, "Requested extension", NULL},
		{"i", CLI_FLAG_STRING, &inc, "Alias of -increment", NULL},
		{"accessor", CLI_FLAG_BOOL, &accessor, "Argument is an accessor", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, accessor ? 1 : 0, 1, &rc))
		return rc;
	json_t *body = json_object();
	if (inc)
		json_object_set_new(body, "increment", json_string(inc));
	const char *path = "auth/token/renew-self";
	if (accessor) {
		json_object_set_new(body, "accessor", json_string(argv[0]));
		path = "auth/token/renew-accessor";
	} else if (argc == 1) {
		json_object_set_new(body, "token", json_string(argv[0]));
		path = "auth/token/renew";
	}
	rc = token_request(c, "PUT", path, body, "Error renewing token", NULL);
	json_decref(body);
	return rc;
}

int cli_cmd_token_revoke(struct cli *c, int argc, char **argv)
{
	int rc, self = 0, accessor = 0;
	const char *mode = NULL;
	struct cli_flag fl[] = {
		{"self", CLI_FLAG_BOOL, &self, "Revoke the token in use", NULL},
		{"accessor", CLI_FLAG_BOOL, &accessor, "Argument is an accessor", NULL},
		{"mode", CLI_FLAG_STRING, &mode, "orphan or path", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, -1, &rc))
		return rc;
	if (self && argc > 0)
		return cli_fail(c, CLI_ELOCAL, "Too many arguments (expected 0, got %d)", argc);
	if (!self && cli_check_args(c, argc, 1, 1))
		return CLI_ELOCAL;
	if (mode && strcmp(mode, "orphan") && strcmp(mode, "path"))
		return cli_fail(c, CLI_ELOCAL, "Invalid mode: %s (want orphan or path)", mode);
	if (accessor && mode && strcmp(mode, "path") == 0)
		return cli_fail(c, CLI_ELOCAL, "Cannot use -accessor with -mode=path");
	json_t *body = NULL;
	char rp[1200];
	const char *method = "PUT";
	if (self) {
		snprintf(rp, sizeof(rp), "auth/token/revoke-self");
	} else if (mode && strcmp(mode, "path") == 0) {
		char *p = cli_sanitize_path(argv[0], 0);
		snprintf(rp, sizeof(rp), "sys/leases/revoke-prefix/%s", p);
		free(p);
	} else if (accessor) {
		snprintf(rp, sizeof(rp), "auth/token/revoke-accessor");
		body = json_pack("{s:s}", "accessor", argv[0]);
	} else if (mode && strcmp(mode, "orphan") == 0) {
		snprintf(rp, sizeof(rp), "auth/token/revoke-orphan");
		body = json_pack("{s:s}", "token", argv[0]);
	} else {
		snprintf(rp, sizeof(rp), "auth/token/revoke");
		body = json_pack("{s:s}", "token", argv[0]);
	}
	rc = token_request(c, method, rp, body, "Error revoking token",
			   "Success! Revoked token (if it existed)");
	json_decref(body);
	return rc;
}

int cli_cmd_token_capabilities(struct cli *c, int argc, char **argv)
{
	int rc, accessor = 0;
	struct cli_flag fl[] = {{"accessor", CLI_FLAG_BOOL, &accessor, "Argument is an accessor", NULL},
				{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 2, &rc))
		return rc;
	const char *path = argc == 2 ? argv[1] : argv[0];
	json_t *body = json_pack("{s:[s]}", "paths", path);
	const char *rp = "sys/capabilities-self";
	if (argc == 2) {
		json_object_set_new(body, accessor ? "accessor" : "token", json_string(argv[0]));
		rp = accessor ? "sys/capabilities-accessor" : "sys/capabilities";
	}
	struct cli_resp r;
	struct cli_req rq = {.method = "POST", .path = rp, .body = body};
	rc = cli_call(c, &rq, &r, "Error listing capabilities", 0);
	json_decref(body);
	if (rc)
		return rc;
	json_t *d = json_object_get(r.json, "data");
	json_t *caps = json_object_get(d, path);
	if (!caps)
		caps = json_object_get(d, "capabilities");
	if (!caps)
		caps = json_object_get(r.json, path);
	if (!caps)
		caps = json_object_get(r.json, "capabilities");
	if (strcmp(cli_format(c), "table") != 0) {
		cli_output_data(c, caps ? caps : json_array());
	} else {
		/* sorted, comma separated, like Vault */
		size_t n = json_array_size(caps);
		const char **v = calloc(n + 1, sizeof(*v));
		for (size_t i = 0; i < n; i++)
			v[i] = json_string_value(json_array_get(caps, i));
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && strcmp(v[j - 1] ? v[j - 1] : "", v[j] ? v[j] : "") > 0; j--) {
				const char *t = v[j];
				v[j] = v[j - 1];
				v[j - 1] = t;
			}
		for (size_t i = 0; i < n; i++)
			fprintf(c->out, "%s%s", i ? ", " : "", v[i] ? v[i] : "");
		fputc('\n', c->out);
		free(v);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

/* ---- lease ---- */
int cli_cmd_lease_lookup(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	json_t *body = json_pack("{s:s}", "lease_id", argv[0]);
	rc = token_request(c, "PUT", "sys/leases/lookup", body, "Error looking up lease", NULL);
	json_decref(body);
	return rc;
}

int cli_cmd_lease_renew(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *inc = NULL;
	struct cli_flag fl[] = {
		{"increment", CLI_FLAG_STRING, &inc, "Requested extension", NULL},
		{"i", CLI_FLAG_STRING, &inc, "Alias of -increment", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	json_t *body = json_pack("{s:s}", "lease_id", argv[0]);
	if (inc)
		json_object_set_new(body, "increment", json_string(inc));
	struct cli_resp r;
	struct cli_req rq = {.method = "PUT", .path = "sys/leases/renew", .body = body};
	rc = cli_call(c, &rq, &r, "Error renewing", 0);
	json_decref(body);
	if (rc)
		return rc;
	rc = r.json ? cli_output_secret(c, r.json) : CLI_OK;
	cli_resp_free(&r);
	return rc;
}

int cli_cmd_lease_revoke(struct cli *c, int argc, char **argv)
{
	int rc, prefix = 0, force = 0, sync = 0;
	struct cli_flag fl[] = {
		{"prefix", CLI_FLAG_BOOL, &prefix, "Revoke every lease under the prefix", NULL},
		{"force", CLI_FLAG_BOOL, &force, "Ignore backend errors (with -prefix)", NULL},
		{"f", CLI_FLAG_BOOL, &force, "Alias of -force", NULL},
		{"sync", CLI_FLAG_BOOL, &sync, "Wait for revocation", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	if (force && !prefix)
		return cli_fail(c, CLI_ELOCAL, "Specifying -force requires also specifying -prefix");
	char rp[2048], ok[2200];
	json_t *body = NULL;
	if (force) {
		snprintf(rp, sizeof(rp), "sys/leases/revoke-force/%s", argv[0]);
		snprintf(ok, sizeof(ok), "Success! Force revoked any leases with prefix: %s", argv[0]);
	} else if (prefix) {
		snprintf(rp, sizeof(rp), "sys/leases/revoke-prefix/%s", argv[0]);
		body = json_pack("{s:b}", "sync", sync);
		snprintf(ok, sizeof(ok), sync ? "Success! Revoked any leases with prefix: %s"
					      : "All revocation operations queued successfully!",
			 argv[0]);
	} else {
		snprintf(rp, sizeof(rp), "sys/leases/revoke");
		body = json_pack("{s:s, s:b}", "lease_id", argv[0], "sync", sync);
		snprintf(ok, sizeof(ok), sync ? "Success! Revoked lease: %s"
					      : "All revocation operations queued successfully!",
			 argv[0]);
	}
	rc = token_request(c, "PUT", rp, body, "Error revoking lease", ok);
	json_decref(body);
	return rc;
}

int cli_cmd_print_token(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 0, &rc))
		return rc;
	fprintf(c->out, "%s\n", c->token ? c->token : "");
	return CLI_OK;
}
