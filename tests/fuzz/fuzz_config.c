/*
 * fuzz_config.c - libFuzzer target for the server configuration loader
 * (src/server/config.c) over HCL and JSON text.
 *
 * Every input either loads into a config whose invariants hold (a storage
 * stanza, listeners with addresses, TLS listeners with cert and key) or
 * fails with a one-line message. Built only with -DCOFFER_FUZZ=ON.
 * The module libraries carry the coverage instrumentation in a
 * -DCOFFER_FUZZ=ON build (-fsanitize=fuzzer-no-link).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_config *c = NULL;
	struct verr err = {0};
	int rc = config_load_buffer(&c, (const char *)data, size, "fuzz.hcl", &err);
	if (rc) {
		if (c || !err.msg[0] || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	if (!c->storage || !c->storage->type || !json_is_object(c->storage->options))
		abort();
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct config_listener *l = &c->listeners[i];
		if (!l->address || (!l->tls_disable && (!l->tls_cert_file || !l->tls_key_file)))
			abort();
		if (config_listener_max_request_size(l) == 0)
			abort();
	}
	if (c->nseals > 2 || c->default_lease_ttl > c->max_lease_ttl)
		abort();
	config_free(c);
	return 0;
}
