/*
 * Unit tests for the auto seals (src/seal/awskms.c, transit.c, pkcs11.c):
 * each describes itself as an auto seal with recovery keys; bad stanzas are
 * refused at start with a message naming the setting; an unreachable key
 * service is VERR_UNAVAILABLE (the core retries) and a wrong credential
 * never appears in a message; and, with a real SoftHSM2 token made in a
 * temp directory, the pkcs11 envelope round-trips, an altered blob or a
 * wrong PIN is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "seal/seal.h"
#include "util/rand.h"
#include "util/secmem.h"

static const char *const softhsm_paths[] = {"/usr/lib/softhsm/libsofthsm2.so",
					    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", NULL};

static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd); /* nobody listens there now */
	return ntohs(a.sin_port);
}

static void test_seal_auto__awskms_config_and_unreachable(void **state)
{
	(void)state;
	struct seal *s = NULL;
	struct verr err = {0};
	unsetenv("VAULT_AWSKMS_SEAL_KEY_ID");
	json_t *c = json_pack("{s:s}", "region", "us-east-1");
	assert_int_equal(seal_awskms_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "kms_key_id"));
	json_decref(c);
	c = json_pack("{s:s,s:s,s:s,s:s}", "kms_key_id", "alias/x", "endpoint", "ftp://x", "access_key",
		      "AK", "secret_key", "SK");
	assert_int_equal(seal_awskms_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "endpoint"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "kms_key_id", "alias/x", "region", "us east");
	assert_int_equal(seal_awskms_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "region"));
	json_decref(c);

	char ep[64];
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", closed_port());
	c = json_pack("{s:s,s:s,s:s,s:s}", "kms_key_id", "alias/x", "endpoint", ep, "access_key",
		      "AKID", "secret_key", "very-secret-value");
	assert_int_equal(seal_awskms_new(&s, c, &err), 0);
	json_decref(c);
	assert_string_equal(seal_type(s), "awskms");
	assert_true(seal_recovery_keys(s));
	assert_false(seal_needs_kek(s));
	assert_string_equal(seal_root_path(s), "core/awskms-root");
	uint8_t root[32] = {1}, *blob = NULL, *out = NULL;
	size_t bl = 0, ol = 0;
	assert_int_equal(seal_wrap(s, NULL, 0, root, 32, &blob, &bl, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "could not reach"));
	assert_null(strstr(err.msg, "very-secret-value"));
	/* not an envelope at all: refused before any call */
	assert_int_equal(seal_unwrap(s, NULL, 0, (const uint8_t *)"{}", 2, &out, &ol, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "invalid key"));
	seal_close(s);
}

/* The credential chain's last link: the instance metadata service. */
static void test_seal_auto__awskms_instance_metadata(void **state)
{
	(void)state;
	struct seal *s = NULL;
	struct verr err = {0};
	unsetenv("VAULT_AWSKMS_SEAL_KEY_ID");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	char ep[64], md[64];
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", closed_port());
	snprintf(md, sizeof(md), "http://127.0.0.1:%d/", closed_port());
	json_t *c = json_pack("{s:s,s:s}", "kms_key_id", "alias/x", "endpoint", ep);
	/* switched off: no credentials at all, refused at start */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(seal_awskms_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "no AWS credentials"));
	assert_null(strstr(err.msg, "instance role"));
	unsetenv("AWS_EC2_METADATA_DISABLED");
	/* not a URL */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254", 1);
	assert_int_equal(seal_awskms_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "AWS_EC2_METADATA_SERVICE_ENDPOINT"));
	/* set explicitly but unreachable: starts, and every call says why */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md, 1);
	assert_int_equal(seal_awskms_new(&s, c, &err), 0);
	char kid[64] = "x";
	seal_key_id(s, kid, sizeof(kid));
	assert_string_equal(kid, ""); /* not described yet */
	uint8_t root[32] = {1}, *blob = NULL;
	size_t bl = 0;
	assert_int_equal(seal_wrap(s, NULL, 0, root, 32, &blob, &bl, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "instance metadata service"));
	assert_non_null(strstr(err.msg, "could not reach"));
	seal_close(s);
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	json_decref(c);
}

static void test_seal_auto__transit_config(void **state)
{
	(void)state;
	struct seal *s = NULL;
	struct verr err = {0};
	unsetenv("VAULT_ADDR");
	unsetenv("VAULT_TOKEN");
	unsetenv("VAULT_TRANSIT_SEAL_KEY_NAME");
	json_t *c = json_pack("{s:s}", "key_name", "k");
	assert_int_equal(seal_transit_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "address"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "address", "http://127.0.0.1:1", "token", "t");
	assert_int_equal(seal_transit_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "key_name"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "address", "http://127.0.0.1:1", "key_name", "k");
	assert_int_equal(seal_transit_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "token"));
	json_decref(c);
	char addr[64];
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d/", closed_port());
	c = json_pack("{s:s,s:s,s:s,s:s}", "address", addr, "key_name", "k", "token", "s.tok-secret",
		      "disable_renewal", "true");
	assert_int_equal(seal_transit_new(&s, c, &err), 0);
	assert_string_equal(seal_type(s), "transit");
	assert_true(seal_recovery_keys(s));
	uint8_t root[32] = {2}, *blob = NULL;
	size_t bl = 0;
	assert_int_equal(seal_wrap(s, NULL, 0, root, 32, &blob, &bl, &err), VERR_UNAVAILABLE);
	assert_null(strstr(err.msg, "tok-secret"));
	/* SIGHUP: a new token */
	json_object_set_new(c, "token", json_string("s.other"));
	assert_int_equal(seal_reload(s, c, &err), 0);
	json_decref(c);
	seal_close(s);
}

static const char *softhsm(void)
{
	for (int i = 0; softhsm_paths[i]; i++)
		if (access(softhsm_paths[i], R_OK) == 0)
			return softhsm_paths[i];
	return NULL;
}

static void test_seal_auto__pkcs11_softhsm(void **state)
{
	(void)state;
	struct seal *s = NULL;
	struct verr err = {0};
	json_t *c = json_pack("{s:s,s:s,s:s}", "pin", "1", "token_label", "t", "key_label", "k");
	assert_int_equal(seal_pkcs11_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "lib"));
	json_object_set_new(c, "lib", json_string("/nonexistent/libp11.so"));
	assert_int_equal(seal_pkcs11_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "cannot load"));
	const char *mod = softhsm();
	if (!mod) {
		json_decref(c);
		fprintf(stderr, "softhsm2 is not installed (scripts/deps.sh): skipped\n");
		skip();
	}
	json_object_set_new(c, "lib", json_string(mod));
	json_object_set_new(c, "mechanism", json_string("CKM_RSA_PKCS"));
	assert_int_equal(seal_pkcs11_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "mechanism"));
	assert_non_null(strstr(err.msg, "CKM_RSA_PKCS_OAEP"));
	/* RSA-OAEP by name or number (Vault's forms), with a known OAEP hash */
	const char *oaep[] = {"CKM_RSA_PKCS_OAEP", "0x0009", "9"};
	for (size_t i = 0; i < 3; i++) {
		json_object_set_new(c, "mechanism", json_string(oaep[i]));
		assert_int_equal(seal_pkcs11_new(&s, c, &err), 0);
		seal_close(s);
	}
	json_object_set_new(c, "rsa_oaep_hash", json_string("md5"));
	assert_int_equal(seal_pkcs11_new(&s, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "rsa_oaep_hash"));
	json_object_del(c, "rsa_oaep_hash");
	json_object_set_new(c, "mechanism", json_string("0x"));
	assert_int_equal(seal_pkcs11_new(&s, c, &err), VERR_INVALID);
	json_decref(c);

	char dir[] = "/tmp/coffer-softhsm-XXXXXX", conf[300], cmd[600];
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd),
		 "softhsm2-util --init-token --free --label unit-hsm --so-pin 1234 --pin 4321 >/dev/null 2>&1");
	/* NOLINTNEXTLINE(cert-env33-c): a test fixture, fixed command line */
	assert_int_equal(system(cmd), 0);

	c = json_pack("{s:s,s:s,s:s,s:s,s:s}", "lib", mod, "pin", "4321", "token_label", "unit-hsm",
		      "key_label", "unit-key", "generate_key", "true");
	assert_int_equal(seal_pkcs11_new(&s, c, &err), 0);
	assert_string_equal(seal_type(s), "pkcs11");
	uint8_t root[32], *blob = NULL, *out = NULL;
	size_t bl = 0, ol = 0;
	assert_int_equal(rand_bytes(root, 32, NULL), 0);
	assert_int_equal(seal_wrap(s, NULL, 0, root, 32, &blob, &bl, &err), 0);
	assert_null(memmem(blob, bl, root, 32));
	assert_int_equal(seal_unwrap(s, NULL, 0, blob, bl, &out, &ol, &err), 0);
	assert_int_equal(ol, 32);
	assert_memory_equal(out, root, 32);
	secmem_free(out, ol);
	/* altered wrapped data key: the HSM's GCM tag check refuses it */
	char *wk = strstr((char *)blob, "\"wrapped_key\":\"");
	assert_non_null(wk);
	wk += 16;
	*wk = *wk == 'A' ? 'B' : 'A';
	assert_int_equal(seal_unwrap(s, NULL, 0, blob, bl, &out, &ol, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "invalid key"));
	free(blob);
	seal_close(s);

	/* wrong PIN: denied, the PIN not in the message */
	json_object_set_new(c, "pin", json_string("nope-pin-77"));
	assert_int_equal(seal_pkcs11_new(&s, c, &err), 0);
	assert_int_equal(seal_wrap(s, NULL, 0, root, 32, &blob, &bl, &err), VERR_DENIED);
	assert_non_null(strstr(err.msg, "CKR_PIN_INCORRECT"));
	assert_null(strstr(err.msg, "nope-pin-77"));
	seal_close(s);
	json_decref(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	/* NOLINTNEXTLINE(cert-env33-c): a test fixture, fixed command line */
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_auto__awskms_config_and_unreachable),
		cmocka_unit_test(test_seal_auto__awskms_instance_metadata),
		cmocka_unit_test(test_seal_auto__transit_config),
		cmocka_unit_test(test_seal_auto__pkcs11_softhsm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
