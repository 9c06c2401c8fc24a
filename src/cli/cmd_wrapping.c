/*
 * cmd_wrapping.c - `coffer unwrap [TOKEN]`: hand a wrapping token to
 * sys/wrapping/unwrap and print what it held, as Vault's `vault unwrap`.
 *
 * Which token is sent where follows Vault's api.Logical.Unwrap: without
 * TOKEN the client's own token is the wrapping token (X-Vault-Token); with
 * TOKEN and no client token, TOKEN goes in the header; with both (and
 * different), the client authenticates and TOKEN goes in the body.
 */
#include "cli/cli.h"

#include <string.h>

int cli_cmd_unwrap(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 1, &rc))
		return rc;
	const char *tok = argc == 1 ? argv[0] : NULL;
	json_t *body = NULL;
	struct cli_req rq = {.method = "PUT", .path = "sys/wrapping/unwrap"};
	if (tok && *tok) {
		if (!c->token || !*c->token)
			rq.token = tok;
		else if (strcmp(tok, c->token) != 0)
			body = json_pack("{s:s}", "token", tok);
	}
	rq.body = body;
	struct cli_resp r;
	rc = cli_call(c, &rq, &r, "Error unwrapping", 0);
	json_decref(body);
	if (rc)
		return rc;
	if (!r.json)
		rc = cli_fail(c, CLI_EREMOTE, "Could not find wrapped response");
	else
		rc = cli_output_secret(c, r.json);
	cli_resp_free(&r);
	return rc;
}
