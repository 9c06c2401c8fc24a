/*
 * cmd_raft.c - `coffer operator raft join | list-peers | remove-peer |
 * snapshot inspect` (snapshot save / restore are in cmd_operator.c): thin
 * wrappers over sys/storage/raft, and the offline check of a snapshot file
 * (util/snaparchive.h) that needs no server.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/snaparchive.h"

int cli_cmd_operator_raft_join(struct cli *c, int argc, char **argv)
{
	int rc, non_voter = 0, retry = 0;
	const char *ca = NULL;
	struct cli_flag fl[] = {
		{"leader-ca-cert", CLI_FLAG_STRING, &ca, "CA certificate (PEM or @file)", NULL},
		{"non-voter", CLI_FLAG_BOOL, &non_voter, "Join as a non-voter", NULL},
		{"retry", CLI_FLAG_BOOL, &retry, "Retry while the leader is unreachable", NULL},
		{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *pem = NULL;
	if (ca && ca[0] == '@') {
		size_t len = 0;
		struct verr e = {0};
		if (cli_read_file(&pem, &len, ca + 1, stdin, &e))
			return cli_fail(c, CLI_ELOCAL, "Error reading the leader CA certificate: %s",
					e.msg);
	}
	json_t *body = json_pack("{s:s, s:b, s:b}", "leader_api_addr", argv[0], "non_voter",
				 non_voter, "retry", retry);
	if (pem || ca)
		json_object_set_new(body, "leader_ca_cert", json_string(pem ? pem : ca));
	free(pem);
	struct cli_resp r;
	struct cli_req rq = {.method = "POST", .path = "sys/storage/raft/join", .body = body};
	rc = cli_call(c, &rq, &r, "Error joining the node to the Raft cluster", 0);
	json_decref(body);
	if (rc)
		return rc;
	json_t *out = json_pack("{s:O}", "Joined", json_object_get(r.json, "joined"));
	rc = cli_output_data(c, out);
	json_decref(out);
	cli_resp_free(&r);
	return rc;
}

int cli_cmd_operator_raft_list_peers(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "GET", "sys/storage/raft/configuration",
			    "Error reading the raft cluster configuration", &r, &rc))
		return rc;
	json_t *cfg = json_object_get(json_object_get(r.json, "data"), "config");
	json_t *servers = json_object_get(cfg, "servers");
	if (strcmp(cli_format(c), "table") != 0) {
		rc = cli_output_data(c, json_object_get(r.json, "data"));
		cli_resp_free(&r);
		return rc;
	}
	size_t n = json_array_size(servers);
	const char **cells = calloc((n + 1) * 4, sizeof(*cells));
	if (!cells)
		abort();
	static const char *const hdr[] = {"Node", "Address", "State", "Voter"};
	for (int i = 0; i < 4; i++)
		cells[i] = hdr[i];
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(servers, i);
		const char **row = cells + (i + 1) * 4;
		row[0] = json_string_value(json_object_get(s, "node_id"));
		row[1] = json_string_value(json_object_get(s, "address"));
		row[2] = json_is_true(json_object_get(s, "leader")) ? "leader" : "follower";
		row[3] = json_is_true(json_object_get(s, "voter")) ? "true" : "false";
		for (int k = 0; k < 2; k++)
			if (!row[k])
				row[k] = "";
	}
	cli_table(c->out, cells, n + 1, 4);
	free(cells);
	cli_resp_free(&r);
	return 0;
}

int cli_cmd_operator_raft_remove_peer(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	json_t *body = json_pack("{s:s}", "server_id", argv[0]);
	struct cli_resp r;
	struct cli_req rq = {.method = "POST", .path = "sys/storage/raft/remove-peer", .body = body};
	rc = cli_call(c, &rq, &r, "Error removing the peer from raft configuration", 0);
	json_decref(body);
	if (rc)
		return rc;
	cli_resp_free(&r);
	fprintf(c->out, "Peer removed successfully!\n");
	return 0;
}

int cli_cmd_operator_raft_inspect(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *data = NULL;
	size_t len = 0;
	struct verr e = {0};
	struct snapcheck a;
	if (strcmp(argv[0], "-") != 0) {
		/* a file is checked in one streaming pass, whatever its size */
		int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cli_fail(c, CLI_ELOCAL, "Error opening snapshot file: %s",
					strerror(errno));
		rc = snaparchive_check(&a, fd, NULL, 0, &e);
		close(fd);
	} else {
		if (cli_read_file(&data, &len, argv[0], stdin, &e))
			return cli_fail(c, CLI_ELOCAL, "Error opening snapshot file: %s", e.msg);
		rc = snaparchive_check(&a, -1, (const uint8_t *)data, len, &e);
		free(data);
	}
	if (rc)
		return cli_fail(c, CLI_ELOCAL, "Error inspecting the snapshot: %s", e.msg);
	json_t *meta = json_loadb(a.meta, a.meta_len, 0, NULL);
	uint64_t state_len = a.state_len;
	snapcheck_free(&a);
	if (!json_is_object(meta)) {
		json_decref(meta);
		return cli_fail(c, CLI_ELOCAL, "Error inspecting the snapshot: meta.json is not JSON");
	}
	json_t *out = json_pack("{s:O, s:O, s:O, s:O, s:O, s:I, s:s}", "Index",
				json_object_get(meta, "index"), "Term", json_object_get(meta, "term"),
				"Keys", json_object_get(meta, "keys"), "Node", json_object_get(meta, "node_id"),
				"Cluster ID", json_object_get(meta, "cluster_id"), "State Bytes",
				(json_int_t)state_len, "Checksums",
				"ok (the sealed copy is checked by the cluster at restore)");
	json_decref(meta);
	rc = out ? cli_output_data(c, out) : cli_fail(c, CLI_ELOCAL, "meta.json lacks fields");
	json_decref(out);
	return rc;
}

int cli_cmd_operator_raft_autopilot_state(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "GET", "sys/storage/raft/autopilot/state",
			    "Error checking autopilot state", &r, &rc))
		return rc;
	json_t *d = json_object_get(r.json, "data");
	if (strcmp(cli_format(c), "table") != 0) {
		rc = cli_output_data(c, d);
		cli_resp_free(&r);
		return rc;
	}
	fprintf(c->out, "Healthy:                      %s\n",
		json_is_true(json_object_get(d, "healthy")) ? "true" : "false");
	fprintf(c->out, "Failure Tolerance:            %lld\n",
		(long long)json_integer_value(json_object_get(d, "failure_tolerance")));
	fprintf(c->out, "Leader:                       %s\n",
		json_string_value(json_object_get(d, "leader")) ?: "");
	fprintf(c->out, "Voters:\n");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(d, "voters"), i, v)
		fprintf(c->out, "   %s\n", json_string_value(v));
	fprintf(c->out, "Servers:\n");
	const char *k;
	json_object_foreach(json_object_get(d, "servers"), k, v) {
		fprintf(c->out, "   %s\n", k);
		fprintf(c->out, "      Address:        %s\n",
			json_string_value(json_object_get(v, "address")) ?: "");
		fprintf(c->out, "      Status:         %s\n",
			json_string_value(json_object_get(v, "status")) ?: "");
		fprintf(c->out, "      Node Status:    %s\n",
			json_string_value(json_object_get(v, "node_status")) ?: "");
		fprintf(c->out, "      Healthy:        %s\n",
			json_is_true(json_object_get(v, "healthy")) ? "true" : "false");
		fprintf(c->out, "      Last Contact:   %s\n",
			json_string_value(json_object_get(v, "last_contact")) ?: "");
		fprintf(c->out, "      Last Index:     %lld\n",
			(long long)json_integer_value(json_object_get(v, "last_index")));
	}
	cli_resp_free(&r);
	return 0;
}
