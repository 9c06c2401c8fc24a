/*
 * fuzz_http.c - libFuzzer target for the HTTP request mapping
 * (src/http/request.c) and the answer builder (src/http/response.c).
 *
 * Input: an HTTP/1.1 request as text ("METHOD target\n", "Name: value\n"
 * header lines, an empty line, then the body). It is split the way
 * libmicrohttpd would hand it over and fed to http__build_request(); a
 * request that reaches the "core" is answered by echoing its data through
 * http__reply_from_core(), so envelope and data_at_top code run too.
 * Seeds: tests/fuzz/corpus/http/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

#define MAX_HDRS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	struct http_header hdrs[MAX_HDRS];
	struct http_raw_request in = {0};
	struct http_built b;
	struct http_reply reply;
	size_t nh = 0, pos = 0, line_end;
	char *sp;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	/* request line: method, one space, target (may contain NUL bytes) */
	line_end = pos;
	while (line_end < size && buf[line_end] != '\n')
		line_end++;
	sp = memchr(buf, ' ', line_end);
	if (!sp)
		goto out;
	*sp = '\0';
	in.method = buf;
	in.target = sp + 1;
	in.target_len = line_end - (size_t)(sp + 1 - buf);
	if (line_end < size)
		buf[line_end] = '\0';
	pos = line_end + 1;

	/* headers until an empty line */
	while (pos < size && nh < MAX_HDRS) {
		line_end = pos;
		while (line_end < size && buf[line_end] != '\n')
			line_end++;
		if (line_end == pos) {
			pos++;
			break;
		}
		buf[line_end < size ? line_end : size] = '\0';
		char *colon = strchr(buf + pos, ':');
		if (colon) {
			*colon = '\0';
			hdrs[nh].name = buf + pos;
			hdrs[nh].value = colon + 1 + (colon[1] == ' ');
			nh++;
		}
		pos = line_end + 1;
	}
	in.headers = hdrs;
	in.nheaders = nh;
	if (pos < size) {
		in.body = buf + pos;
		in.body_len = size - pos;
	}
	in.remote_addr = "127.0.0.1";
	in.body_too_large = size > 0 && data[size - 1] == 0xff;

	if (http__build_request(&b, &reply, &in) == 0) {
		struct logical_response resp = {0};
		struct verr err;
		int rc = 0;
		resp.data = json_deep_copy(b.req.data);
		resp.data_at_top = b.req.path[0] & 1;
		if (b.req.path[0] & 2) {
			rc = VERR_NOT_FOUND;
			verr_set(&err, rc, "%s", b.req.path);
		}
		http__reply_from_core(&reply, rc, &b.req, &resp, rc ? &err : NULL);
		logical_response_reset(&resp);
		http__built_free(&b);
	}
	http__reply_free(&reply);
out:
	free(buf);
	return 0;
}
