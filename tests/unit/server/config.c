/*
 * tests/unit/server/config.c - the server configuration loader
 * (src/server/config.c): Vault configs load, HCL and JSON agree, files and
 * directories merge, and every error names file, line, stanza and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"

static const char seed_config[] =
	"storage \"consul\" {\n"
	"address = \"127.0.0.1:8500\"\n"
	"path = \"vault/\"\n"
	"}\n"
	"listener \"tcp\" {\n"
	"address = \"0.0.0.0:8200\"\n"
	"tls_cert_file = \"/path/to/cert.pem\"\n"
	"tls_key_file = \"/path/to/key.pem\"\n"
	"}\n"
	"ha_storage \"consul\" {\n"
	"address = \"127.0.0.1:8500\"\n"
	"path = \"vault-ha/\"\n"
	"}\n"
	"cluster_addr = \"https://vault-1:8201\"\n"
	"api_addr = \"https://vault-1:8200\"\n";

static struct server_config *load_ok(const char *text, const char *name)
{
	struct server_config *c = NULL;
	struct verr err = {0};
	if (config_load_buffer(&c, text, strlen(text), name, &err))
		fail_msg("load failed: %s", err.msg);
	return c;
}

/* Expect failure; the message must contain every NULL-terminated fragment. */
static void load_err(const char *text, const char *name, ...)
{
	struct server_config *c = NULL;
	struct verr err = {0};
	int rc = config_load_buffer(&c, text, strlen(text), name, &err);
	if (rc == 0)
		fail_msg("expected an error for:\n%s", text);
	assert_null(c);
	va_list ap;
	va_start(ap, name);
	const char *frag;
	while ((frag = va_arg(ap, const char *)))
		if (!strstr(err.msg, frag))
			fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
	va_end(ap);
}

static void test_server_config__seed_production_config(void **state)
{
	(void)state;
	struct server_config *c = load_ok(seed_config, "vault.hcl");
	assert_string_equal(c->storage->type, "consul");
	assert_string_equal(json_string_value(json_object_get(c->storage->options, "address")),
		"127.0.0.1:8500");
	assert_string_equal(json_string_value(json_object_get(c->storage->options, "path")), "vault/");
	assert_string_equal(c->storage->file, "vault.hcl");
	assert_int_equal(c->storage->line, 1);
	assert_non_null(c->ha_storage);
	assert_string_equal(c->ha_storage->type, "consul");
	assert_string_equal(json_string_value(json_object_get(c->ha_storage->options, "path")), "vault-ha/");
	assert_int_equal(c->ha_storage->line, 10);
	assert_int_equal(c->nlisteners, 1);
	struct config_listener *l = &c->listeners[0];
	assert_string_equal(l->type, "tcp");
	assert_string_equal(l->address, "0.0.0.0:8200");
	assert_false(l->tls_disable);
	assert_string_equal(l->tls_cert_file, "/path/to/cert.pem");
	assert_string_equal(l->tls_key_file, "/path/to/key.pem");
	assert_int_equal(l->tls_min_version, CONFIG_TLS12);
	assert_int_equal(l->line, 5);
	assert_int_equal(config_listener_max_request_size(l), 33554432);
	assert_string_equal(c->cluster_addr, "https://vault-1:8201");
	assert_string_equal(c->api_addr, "https://vault-1:8200");
	assert_int_equal(c->default_lease_ttl, 768 * 3600);
	assert_int_equal(c->max_lease_ttl, 768 * 3600);
	assert_int_equal(c->default_max_request_duration, 90);
	assert_false(c->disable_mlock);
	assert_false(c->allow_audit_log_prefixing);
	assert_int_equal(c->nseals, 0);
	assert_int_equal(c->telemetry.prometheus_retention_time, 0);
	config_free(c);
}

static void test_server_config__full_config(void **state)
{
	(void)state;
	struct server_config *c = load_ok(
		"ui = true\n"
		"disable_mlock = \"true\"\n"
		"log_level = \"debug\"\n"
		"log_format = \"json\"\n"
		"default_lease_ttl = \"1h\"\n"
		"max_lease_ttl = 86400\n"
		"pid_file = \"/run/coffer.pid\"\n"
		"cluster_name = \"prod\"\n"
		"plugin_directory = \"/usr/lib/coffer/plugins\"\n"
		"allow_audit_log_prefixing = true\n"
		"raw_storage_endpoint = 1\n"
		"disable_sealwrap = false\n"
		"disable_cache = true\n"
		"experiments = [\"events.alpha1\"]\n"
		"backend \"file\" { path = \"/var/lib/coffer\" }\n"
		"seal \"transit\" { address = \"https://t:8200\" key_name = \"autounseal\" }\n"
		"telemetry {\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n"
		"  dogstatsd_tags = [\"a:b\"]\n}\n"
		"listener \"tcp\" {\n"
		"  address = \"127.0.0.1:8300\"\n"
		"  cluster_address = \"127.0.0.1:8301\"\n"
		"  tls_disable = \"1\"\n"
		"  max_request_size = -5\n"
		"  max_request_duration = \"2m\"\n"
		"  telemetry { unauthenticated_metrics_access = true }\n"
		"}\n"
		"listener \"tcp\" {\n"
		"  tls_cert_file = \"c.pem\" tls_key_file = \"k.pem\"\n"
		"  tls_min_version = \"tls13\"\n"
		"  tls_client_ca_file = \"ca.pem\"\n"
		"  tls_require_and_verify_client_cert = true\n"
		"}\n",
		"full.hcl");
	assert_true(c->ui);
	assert_true(c->disable_mlock);
	assert_string_equal(c->log_level, "debug");
	assert_string_equal(c->log_format, "json");
	assert_int_equal(c->default_lease_ttl, 3600);
	assert_int_equal(c->max_lease_ttl, 86400);
	assert_string_equal(c->pid_file, "/run/coffer.pid");
	assert_string_equal(c->cluster_name, "prod");
	assert_string_equal(c->plugin_directory, "/usr/lib/coffer/plugins");
	assert_true(c->allow_audit_log_prefixing);
	assert_true(c->raw_storage_endpoint);
	assert_false(c->disable_sealwrap);
	assert_true(c->disable_cache);
	assert_string_equal(json_string_value(json_array_get(c->experiments, 0)), "events.alpha1");
	assert_string_equal(c->storage->type, "file");
	assert_int_equal(c->nseals, 1);
	assert_string_equal(c->seals[0].type, "transit");
	assert_false(c->seals[0].disabled);
	assert_string_equal(json_string_value(json_object_get(c->seals[0].options, "key_name")), "autounseal");
	assert_int_equal(c->telemetry.prometheus_retention_time, 30);
	assert_true(c->telemetry.disable_hostname);
	assert_non_null(json_object_get(c->telemetry.options, "dogstatsd_tags"));
	assert_int_equal(c->nlisteners, 2);
	struct config_listener *a = &c->listeners[0], *b = &c->listeners[1];
	assert_string_equal(a->address, "127.0.0.1:8300");
	assert_string_equal(a->cluster_address, "127.0.0.1:8301");
	assert_true(a->tls_disable);
	assert_int_equal(config_listener_max_request_size(a), -1);
	assert_int_equal(a->max_request_duration, 120);
	assert_true(a->unauthenticated_metrics_access);
	assert_string_equal(b->address, "127.0.0.1:8200");
	assert_false(b->tls_disable);
	assert_int_equal(b->tls_min_version, CONFIG_TLS13);
	assert_string_equal(b->tls_client_ca_file, "ca.pem");
	assert_true(b->tls_require_and_verify_client_cert);
	assert_false(b->unauthenticated_metrics_access);
	assert_int_equal(b->line, 30);
	config_free(c);
}

static void test_server_config__tls_disable_forms(void **state)
{
	(void)state;
	const char *forms[] = {"true", "\"1\"", "\"true\"", "1", "\"TRUE\"", "\"t\""};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text),
			"storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = %s }", forms[i]);
		struct server_config *c = load_ok(text, "t.hcl");
		assert_true(c->listeners[0].tls_disable);
		config_free(c);
	}
	struct server_config *c = load_ok(
		"storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = \"false\" tls_cert_file = \"c\" tls_key_file = \"k\" }",
		"t.hcl");
	assert_false(c->listeners[0].tls_disable);
	config_free(c);
}

static void test_server_config__max_request_size_zero_is_default(void **state)
{
	(void)state;
	struct server_config *c = load_ok(
		"storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true max_request_size = 0 }\n"
		"listener \"tcp\" { tls_disable = true max_request_size = 1024 }", "t.hcl");
	assert_int_equal(config_listener_max_request_size(&c->listeners[0]), 33554432);
	assert_int_equal(config_listener_max_request_size(&c->listeners[1]), 1024);
	config_free(c);
}

static void test_server_config__thread_pool_size(void **state)
{
	(void)state;
	struct server_config *c = load_ok(
		"storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n"
		"listener \"tcp\" { tls_disable = true thread_pool_size = 8 }", "t.hcl");
	assert_int_equal(c->listeners[0].thread_pool_size, 0); /* thread per connection */
	assert_int_equal(c->listeners[1].thread_pool_size, 8);
	config_free(c);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n"
		 " thread_pool_size = -1\n}", "t.hcl", "t.hcl:4", "thread_pool_size", NULL);
}

static void test_server_config__slow_client_limits(void **state)
{
	(void)state;
	struct server_config *c = load_ok(
		"storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n"
		"listener \"tcp\" {\n tls_disable = true\n http_read_header_timeout = \"2s\"\n"
		" http_read_timeout = \"1m\"\n http_idle_timeout = 45\n max_connections = 200\n"
		" max_connections_per_ip = 16\n}", "t.hcl");
	assert_int_equal(c->listeners[0].http_read_header_timeout, 0); /* listener default */
	assert_int_equal(c->listeners[0].max_connections_per_ip, 0);
	assert_int_equal(c->listeners[1].http_read_header_timeout, 2);
	assert_int_equal(c->listeners[1].http_read_timeout, 60);
	assert_int_equal(c->listeners[1].http_idle_timeout, 45);
	assert_int_equal(c->listeners[1].max_connections, 200);
	assert_int_equal(c->listeners[1].max_connections_per_ip, 16);
	config_free(c);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n"
		 " max_connections_per_ip = -3\n}", "t.hcl", "t.hcl:4", "max_connections_per_ip", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n"
		 " http_read_header_timeout = \"soon\"\n}", "t.hcl", "t.hcl:4", "http_read_header_timeout",
		 NULL);
}

/* ---- errors: each names file, line, stanza and key ---- */

static void test_server_config__unknown_top_level_key(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\n\nstorge \"file\" {}\n", "c.hcl",
		"c.hcl:3:", "unknown key \"storge\"", NULL);
	load_err("storage \"inmem\" {}\ndisable_mlok = true\n", "c.hcl", "c.hcl:2:", "disable_mlok", NULL);
}

static void test_server_config__unknown_listener_key(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  adress = \"x\"\n}\n",
		"c.hcl", "c.hcl:4:", "listener \"tcp\"", "unknown key \"adress\"", NULL);
	load_err("storage \"inmem\" {}\ntelemetry {\n  prometheus_retention = \"1h\"\n}\n", "c.hcl",
		"c.hcl:3:", "telemetry", "unknown key \"prometheus_retention\"", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n telemetry { foo = 1 }\n}\n",
		"c.hcl", "c.hcl:4:", "listener \"tcp\"", "unknown key \"foo\"", NULL);
}

static void test_server_config__wrong_types(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\ndisable_mlock = \"maybe\"\n", "c.hcl",
		"c.hcl:2:", "disable_mlock", "expected a boolean", "maybe", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  address = 5\n}\n",
		"c.hcl", "c.hcl:4:", "listener \"tcp\": address: expected a string, found a number", NULL);
	load_err("storage \"inmem\" {}\napi_addr = [\"a\"]\n", "c.hcl", "c.hcl:2:", "api_addr",
		"expected a string, found a list", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n max_request_size = \"big\"\n}",
		"c.hcl", "c.hcl:4:", "max_request_size", "expected an integer", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n tls_min_version = \"tls10\"\n}",
		"c.hcl", "c.hcl:4:", "tls_min_version", "not supported", NULL);
	load_err("storage \"inmem\" {}\nexperiments = \"x\"\n", "c.hcl", "c.hcl:2:", "experiments", NULL);
	load_err("storage = \"file\"\n", "c.hcl", "c.hcl:1:", "storage", "expected a block", NULL);
	load_err("storage {\n path = \"/x\"\n}\n", "c.hcl", "c.hcl:1:", "storage", "type label", NULL);
	load_err("storage \"inmem\" {}\nlog_format = \"xml\"\n", "c.hcl", "log_format", NULL);
}

static void test_server_config__missing_required(void **state)
{
	(void)state;
	load_err("storage \"file\" {\n  node_id = \"a\"\n}\n", "c.hcl",
		"c.hcl:1:", "storage \"file\": path: required", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"0.0.0.0:8200\"\n}\n", "c.hcl",
		"c.hcl:2:", "listener \"tcp\": tls_cert_file: required", NULL);
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_cert_file = \"c.pem\"\n}\n", "c.hcl",
		"c.hcl:2:", "listener \"tcp\": tls_key_file: required", NULL);
	load_err("ui = true\n", "c.hcl", "c.hcl", "no storage backend configured", NULL);
	load_err("", "empty.hcl", "empty.hcl", "no storage backend configured", NULL);
}

static void test_server_config__bad_duration(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\n\ndefault_lease_ttl = \"forever\"\n", "c.hcl",
		"c.hcl:3:", "default_lease_ttl", "forever", NULL);
	load_err("storage \"inmem\" {}\nmax_lease_ttl = -5\n", "c.hcl", "c.hcl:2:", "max_lease_ttl",
		"negative", NULL);
	load_err("storage \"inmem\" {}\ndefault_lease_ttl = \"800h\"\n", "c.hcl",
		"default_lease_ttl", "larger than max_lease_ttl", NULL);
}

/* periodic_interval: the backends' periodic hook (CRL rebuilds, auto-tidy),
 * 60s unless set, at most 1h. */
static void test_server_config__periodic_interval(void **state)
{
	(void)state;
	struct server_config *c = load_ok("storage \"inmem\" {}\n", "t.hcl");
	assert_int_equal(c->periodic_interval, 60);
	config_free(c);
	c = load_ok("storage \"inmem\" {}\nperiodic_interval = \"2s\"\n", "t.hcl");
	assert_int_equal(c->periodic_interval, 2);
	config_free(c);
	load_err("storage \"inmem\" {}\nperiodic_interval = \"2h\"\n", "t.hcl", "periodic_interval",
		 "longer than 1h", NULL);
}

static void test_server_config__two_storage_stanzas(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\nstorage \"file\" { path = \"/x\" }\n", "c.hcl",
		"c.hcl:2:", "storage \"file\"", "more than one storage stanza", NULL);
	load_err("storage \"inmem\" {}\nbackend \"file\" { path = \"/x\" }\n", "c.hcl",
		"more than one storage stanza", NULL);
	load_err("{\"storage\": {\"inmem\": {}, \"file\": {\"path\": \"/x\"}}}", "c.json",
		"c.json: storage \"file\"", "more than one storage stanza", NULL);
}

static void test_server_config__listener_type(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\nlistener \"unix\" { address = \"/run/c.sock\" }\n", "c.hcl",
		"c.hcl:2:", "listener \"unix\"", "unsupported listener type", NULL);
}

static void test_server_config__syntax_error_propagates(void **state)
{
	(void)state;
	load_err("storage \"inmem\" {}\nlistener \"tcp\" {\n  max_request_size = 10kb\n}\n", "c.hcl",
		"c.hcl:3:22", "invalid number \"10kb\"", NULL);
}

static void test_server_config__seals(void **state)
{
	(void)state;
	struct server_config *c = load_ok("storage \"inmem\" {}\n"
		"seal \"awskms\" { region = \"us-east-1\" kms_key_id = \"arn:k\" disabled = \"true\" }\n"
		"seal \"transit\" { key_name = \"k\" }\n", "s.hcl");
	assert_int_equal(c->nseals, 2);
	assert_true(c->seals[0].disabled);
	assert_false(c->seals[1].disabled);
	assert_int_equal(c->seals[1].line, 3);
	config_free(c);
	load_err("storage \"inmem\" {}\nseal \"a\" {}\nseal \"b\" {}\n", "s.hcl", "s.hcl:2:",
		"need a priority each", NULL);
	load_err("storage \"inmem\" {}\nseal \"a\" { disabled = true }\nseal \"b\" { disabled = true }\n",
		"s.hcl", "s.hcl:3:", "one disabled seal stanza", NULL);
	load_err("storage \"inmem\" {}\nseal \"a\" { priority = 1 }\nseal \"b\" { priority = 2 }\n"
		"seal \"c\" { disabled = true }\n", "s.hcl", "s.hcl:4:", "at most one enabled", NULL);
	load_err("storage \"inmem\" {}\nseal \"a\" {}\nseal \"b\" {}\nseal \"c\" {}\nseal \"d\" {}\n",
		"s.hcl", "s.hcl:5:", "at most three", NULL);
	c = load_ok("storage \"inmem\" {}\nseal \"awskms\" { name = \"a\" priority = \"1\" }\n"
		"seal \"awskms\" { name = \"b\" priority = \"2\" }\nseal \"pkcs11\" { priority = 3 }\n", "s.hcl");
	assert_int_equal(c->nseals, 3);
	assert_string_equal(json_string_value(json_object_get(c->seals[1].options, "name")), "b");
	config_free(c);
}

/* ---- JSON and merging ---- */

static void assert_same_config(const struct server_config *a, const struct server_config *b)
{
	assert_string_equal(a->storage->type, b->storage->type);
	assert_true(json_equal(a->storage->options, b->storage->options));
	assert_string_equal(a->ha_storage->type, b->ha_storage->type);
	assert_true(json_equal(a->ha_storage->options, b->ha_storage->options));
	assert_int_equal(a->nlisteners, b->nlisteners);
	for (size_t i = 0; i < a->nlisteners; i++) {
		const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
		assert_string_equal(x->address, y->address);
		assert_int_equal(x->tls_disable, y->tls_disable);
		assert_string_equal(x->tls_cert_file ? x->tls_cert_file : "", y->tls_cert_file ? y->tls_cert_file : "");
		assert_int_equal(x->unauthenticated_metrics_access, y->unauthenticated_metrics_access);
		assert_int_equal(x->max_request_size, y->max_request_size);
		assert_true(json_equal(x->options, y->options));
	}
	assert_string_equal(a->api_addr, b->api_addr);
	assert_string_equal(a->cluster_addr, b->cluster_addr);
	assert_int_equal(a->disable_mlock, b->disable_mlock);
	assert_int_equal(a->default_lease_ttl, b->default_lease_ttl);
	assert_int_equal(a->telemetry.prometheus_retention_time, b->telemetry.prometheus_retention_time);
	assert_int_equal(a->telemetry.disable_hostname, b->telemetry.disable_hostname);
	assert_int_equal(a->nseals, b->nseals);
}

static void test_server_config__json_equals_hcl(void **state)
{
	(void)state;
	struct server_config *h = load_ok(
		"storage \"raft\" {\n  path = \"/d\"\n  node_id = \"n1\"\n}\n"
		"ha_storage \"consul\" { address = \"127.0.0.1:8500\" }\n"
		"listener \"tcp\" {\n  address = \"0.0.0.0:8200\"\n  tls_disable = true\n  max_request_size = 100\n"
		"  telemetry { unauthenticated_metrics_access = true }\n}\n"
		"listener \"tcp\" { tls_cert_file = \"c\" tls_key_file = \"k\" }\n"
		"telemetry { disable_hostname = true }\n"
		"api_addr = \"http://a:8200\"\ncluster_addr = \"http://a:8201\"\n"
		"disable_mlock = true\ndefault_lease_ttl = \"12h\"\n", "c.hcl");
	struct server_config *j = load_ok(
		"{\"storage\": {\"raft\": {\"path\": \"/d\", \"node_id\": \"n1\"}},"
		" \"ha_storage\": [{\"consul\": {\"address\": \"127.0.0.1:8500\"}}],"
		" \"listener\": [{\"tcp\": {\"address\": \"0.0.0.0:8200\", \"tls_disable\": true,"
		"   \"max_request_size\": 100, \"telemetry\": [{\"unauthenticated_metrics_access\": true}]}},"
		"   {\"tcp\": {\"tls_cert_file\": \"c\", \"tls_key_file\": \"k\"}}],"
		" \"telemetry\": {\"disable_hostname\": true},"
		" \"api_addr\": \"http://a:8200\", \"cluster_addr\": \"http://a:8201\","
		" \"disable_mlock\": true, \"default_lease_ttl\": \"12h\"}", "c.json");
	assert_same_config(h, j);
	assert_int_equal(j->storage->line, 0);
	config_free(h);
	config_free(j);
	/* listener telemetry as a plain JSON object works too */
	j = load_ok("{\"storage\": {\"inmem\": {}}, \"listener\": {\"tcp\": {\"tls_disable\": 1,"
		" \"telemetry\": {\"unauthenticated_metrics_access\": true}}}}", "c.json");
	assert_true(j->listeners[0].unauthenticated_metrics_access);
	config_free(j);
	/* JSON errors name the file, stanza and key (no line) */
	load_err("{\"storage\": {\"inmem\": {}}, \"listener\": {\"tcp\": {\"address\": 5, \"tls_disable\": true}}}",
		"c.json", "c.json: listener \"tcp\": address: expected a string", NULL);
	load_err("{\"storage\": {\"inmem\": {}}, \"bogus\": 1}", "c.json", "c.json: unknown key \"bogus\"", NULL);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* A config directory without config files adds nothing (and is no error:
 * other -config paths may carry the settings). It used to qsort a NULL
 * array, which UBSan reports. */
static void test_server_config__empty_directory(void **state)
{
	(void)state;
	char dir[] = "/tmp/coffer-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[64];
	snprintf(sub, sizeof(sub), "%s/empty", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	char *f = write_file(sub, "notes.txt", "not a config");
	char *conf = write_file(dir, "main.conf", "storage \"inmem\" {}\n");
	char *paths[] = {sub, conf};
	struct server_config *c = NULL;
	struct verr err = {0};
	assert_int_equal(config_load(&c, paths, 2, &err), 0);
	assert_string_equal(c->storage->type, "inmem");
	config_free(c);
	unlink(f);
	unlink(conf);
	rmdir(sub);
	rmdir(dir);
	free(f);
	free(conf);
}

static void test_server_config__directory_merges(void **state)
{
	(void)state;
	char dir[] = "/tmp/coffer-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *f1 = write_file(dir, "10-storage.hcl", "storage \"file\" { path = \"/var/lib/c\" }\nui = false\n"
		"listener \"tcp\" { address = \"127.0.0.1:1\" tls_disable = true }\n");
	char *f2 = write_file(dir, "20-listener.json",
		"{\"listener\": {\"tcp\": {\"address\": \"127.0.0.1:2\", \"tls_disable\": true}}, \"ui\": true}");
	char *f3 = write_file(dir, "README.md", "not a config");
	char *f4 = write_file(dir, ".hidden.hcl", "garbage {{{");
	char *paths[] = {dir};
	struct server_config *c = NULL;
	struct verr err = {0};
	assert_int_equal(config_load(&c, paths, 1, &err), 0);
	assert_string_equal(c->storage->type, "file");
	assert_non_null(strstr(c->storage->file, "10-storage.hcl"));
	assert_int_equal(c->nlisteners, 2);
	assert_string_equal(c->listeners[0].address, "127.0.0.1:1");
	assert_string_equal(c->listeners[1].address, "127.0.0.1:2");
	assert_true(c->ui); /* the later file wins */
	config_free(c);

	/* repeated -config=FILE flags merge the same way; a later storage replaces */
	char *f5 = write_file(dir, "other.conf", "storage \"inmem\" {}\n");
	char *two[] = {f1, f5};
	assert_int_equal(config_load(&c, two, 2, &err), 0);
	assert_string_equal(c->storage->type, "inmem");
	assert_int_equal(c->nlisteners, 1);
	config_free(c);

	/* an error in the second file names that file */
	char *f6 = write_file(dir, "30-bad.hcl", "\n\nlisten \"tcp\" {}\n");
	assert_int_equal(config_load(&c, paths, 1, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "30-bad.hcl:3:"));
	assert_non_null(strstr(err.msg, "unknown key \"listen\""));

	char *missing[] = {"/nonexistent/coffer.hcl"};
	assert_int_equal(config_load(&c, missing, 1, &err), VERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "/nonexistent/coffer.hcl"));

	char *files[] = {f1, f2, f3, f4, f5, f6};
	for (size_t i = 0; i < 6; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	rmdir(dir);
}

static void test_server_config__dev(void **state)
{
	(void)state;
	struct server_config *c = NULL;
	struct verr err = {0};
	assert_int_equal(config_dev(&c, NULL, &err), 0);
	assert_string_equal(c->storage->type, "inmem");
	assert_int_equal(c->nlisteners, 1);
	assert_string_equal(c->listeners[0].address, "127.0.0.1:8200");
	assert_true(c->listeners[0].tls_disable);
	assert_true(c->disable_mlock);
	assert_true(c->ui);
	assert_int_equal(c->telemetry.prometheus_retention_time, 24 * 3600);
	config_free(c);
	assert_int_equal(config_dev(&c, "0.0.0.0:18200", &err), 0);
	assert_string_equal(c->listeners[0].address, "0.0.0.0:18200");
	config_free(c);
	config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_config__seed_production_config),
		cmocka_unit_test(test_server_config__full_config),
		cmocka_unit_test(test_server_config__tls_disable_forms),
		cmocka_unit_test(test_server_config__max_request_size_zero_is_default),
		cmocka_unit_test(test_server_config__thread_pool_size),
		cmocka_unit_test(test_server_config__slow_client_limits),
		cmocka_unit_test(test_server_config__unknown_top_level_key),
		cmocka_unit_test(test_server_config__unknown_listener_key),
		cmocka_unit_test(test_server_config__wrong_types),
		cmocka_unit_test(test_server_config__missing_required),
		cmocka_unit_test(test_server_config__bad_duration),
		cmocka_unit_test(test_server_config__periodic_interval),
		cmocka_unit_test(test_server_config__two_storage_stanzas),
		cmocka_unit_test(test_server_config__listener_type),
		cmocka_unit_test(test_server_config__syntax_error_propagates),
		cmocka_unit_test(test_server_config__seals),
		cmocka_unit_test(test_server_config__json_equals_hcl),
		cmocka_unit_test(test_server_config__empty_directory),
		cmocka_unit_test(test_server_config__directory_merges),
		cmocka_unit_test(test_server_config__dev),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
