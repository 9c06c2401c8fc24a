/*
 * tests/fuzz/fuzz_fields.c - libFuzzer target for engine field parsing:
 * framework_fields (src/core/framework.c), which turns a request body into
 * typed fields for every path table, and duration_parse
 * (src/util/duration.c) under it.
 *
 * Input byte 0 picks the mode:
 *   0: the rest is a duration string ("1h30m", "90", "1.5h"). On success
 *      the value is >= 0, an all-digit string means exactly that many
 *      seconds, and a printed value parses back to itself.
 *   1: the rest is JSON. An object is the request body as is; any other
 *      value is given to every field in turn ({"<field>": value}), so each
 *      converter sees every JSON type. The result must match the declared
 *      types (int -> integer, duration -> integer >= 0, bool, list ->
 *      array of strings, map -> object, name -> [A-Za-z0-9._-]+), or the
 *      call fails with VERR_INVALID and a one-line message.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logical/logical.h"
#include "util/duration.h"

static const struct field_def fields[] = {
	{.name = "str", .type = FT_STRING},
	{.name = "int", .type = FT_INT, .def = "7"},
	{.name = "bool", .type = FT_BOOL, .def = "false"},
	{.name = "ttl", .type = FT_DURATION, .def = "1h"},
	{.name = "list", .type = FT_STRSLICE},
	{.name = "map", .type = FT_MAP},
	{.name = "any", .type = FT_ANY},
	{.name = "name", .type = FT_NAME},
	{0},
};

static const struct path_def def = {
	.pattern = "roles/(?P<name>.+)",
	.fields = fields,
};

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return 0;
	return 1;
}

static void check_fields(const json_t *out)
{
	for (const struct field_def *f = fields; f->name; f++) {
		const json_t *v = json_object_get(out, f->name);
		if (!v) {
			if (f->def)
				abort(); /* defaults always apply */
			continue;
		}
		switch (f->type) {
		case FT_STRING:
			if (!json_is_string(v))
				abort();
			break;
		case FT_NAME:
			if (!json_is_string(v) || !valid_name(json_string_value(v)))
				abort();
			break;
		case FT_INT:
			if (!json_is_integer(v))
				abort();
			break;
		case FT_DURATION:
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				abort();
			break;
		case FT_BOOL:
			if (!json_is_boolean(v))
				abort();
			break;
		case FT_STRSLICE: {
			size_t i;
			json_t *e;
			if (!json_is_array(v))
				abort();
			json_array_foreach(v, i, e)
				if (!json_is_string(e))
					abort();
			break;
		}
		case FT_MAP:
			if (!json_is_object(v))
				abort();
			break;
		case FT_ANY:
			break;
		}
	}
}

static void run_fields(json_t *data, json_t *captures)
{
	json_t *out = NULL;
	struct logical_response resp = {0};
	struct verr err = {0};
	int rc = framework_fields(&def, data, captures, &out, &resp, &err);
	if (rc) {
		if (rc != VERR_INVALID || out || !err.msg[0] || strchr(err.msg, '\n'))
			abort();
	} else {
		if (!json_is_object(out))
			abort();
		check_fields(out);
		json_decref(out);
	}
	logical_response_reset(&resp);
}

static void fuzz_duration(const char *s)
{
	int64_t v;
	struct verr err = {0};
	if (duration_parse(&v, s, &err)) {
		if (strchr(err.msg, '\n'))
			abort();
		return;
	}
	if (v < 0)
		abort();
	int digits = *s != '\0';
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			digits = 0;
	if (digits) {
		errno = 0;
		long long x = strtoll(s, NULL, 10);
		if (errno || x != v)
			abort();
	}
	if (v < (1LL << 40)) {
		/* printed form parses back (beyond 2^40 the double sum may round) */
		char buf[64];
		int64_t back;
		duration_format(buf, sizeof(buf), v);
		if (duration_parse(&back, buf, &err) || back != v)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] == 0) {
		char *s = strndup((const char *)data + 1, size - 1);
		if (!s)
			abort();
		fuzz_duration(s);
		free(s);
		return 0;
	}
	json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
	if (!j)
		return 0;
	json_t *caps = json_pack("{s:s}", "name", "web-1");
	if (json_is_object(j)) {
		run_fields(j, NULL);
		run_fields(j, caps);
	} else {
		for (const struct field_def *f = fields; f->name; f++) {
			json_t *body = json_object();
			json_object_set(body, f->name, j);
			run_fields(body, NULL);
			json_decref(body);
		}
		/* a non-object body must be tolerated as well */
		run_fields(j, NULL);
	}
	json_decref(caps);
	json_decref(j);
	return 0;
}
