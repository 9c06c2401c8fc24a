/*
 * Unit tests for the awskms seal's temporary credential sources
 * (src/seal/awskms.c, included to reach its statics): STS's XML answer
 * read field by field with entities decoded, the form encoding of the
 * AssumeRoleWithWebIdentity request, the http:// hosts a container
 * credentials FULL_URI may name (botocore's rule), and the settings read
 * from the environment (a token file without a role refused, the STS
 * endpoint chosen, a relative URI on the agent's address).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/seal/awskms.c"

static void test_seal_awskms_creds__sts_xml(void **state)
{
	(void)state;
	const char *xml = "<AssumeRoleWithWebIdentityResponse><Credentials><AccessKeyId>ASIAX</AccessKeyId>"
			  "<SecretAccessKey>a&amp;b&lt;c&gt;</SecretAccessKey><SessionToken>t/+=</SessionToken>"
			  "</Credentials></AssumeRoleWithWebIdentityResponse>";
	size_t cap = 0;
	char *ak = xml_text(xml, "AccessKeyId", false, NULL);
	char *sk = xml_text(xml, "SecretAccessKey", true, &cap);
	assert_string_equal(ak, "ASIAX");
	assert_string_equal(sk, "a&b<c>");
	assert_null(xml_text(xml, "Expiration", false, NULL));
	assert_null(xml_text("<Code>unterminated", "Code", false, NULL));
	assert_null(xml_text(NULL, "Code", false, NULL));
	free(ak);
	secmem_free(sk, cap);
}

static void test_seal_awskms_creds__form_encoding(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	form_add(&b, "RoleArn", "arn:aws:iam::1:role/x");
	form_add(&b, "WebIdentityToken", "a.b-c_d~e+f/g=");
	assert_string_equal(b.p, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&WebIdentityToken=a.b-c_d~e%2Bf%2Fg%3D");
	buf_free(&b);
}

static void test_seal_awskms_creds__container_hosts(void **state)
{
	(void)state;
	assert_true(container_http_host_ok("http://127.0.0.1:8080/creds"));
	assert_true(container_http_host_ok("http://localhost/creds"));
	assert_true(container_http_host_ok("http://[::1]:80/x"));
	assert_true(container_http_host_ok("http://169.254.170.23/v1/credentials"));
	assert_true(container_http_host_ok("http://169.254.170.2/v2/credentials/x"));
	assert_false(container_http_host_ok("http://203.0.113.5/creds"));
	assert_true(container_http_host_ok("http://127.1.2.3/creds"));
	/* a name that merely starts like a loopback address */
	assert_false(container_http_host_ok("http://127.0.0.1.evil.example/creds"));
	assert_false(container_http_host_ok("http://169.254.170.2.example/x"));
	assert_false(container_http_host_ok("http://example.com/x"));
}

static struct awskms *bare(void)
{
	struct awskms *k = calloc(1, sizeof(*k));
	assert_non_null(k);
	pthread_mutex_init(&k->mu, NULL);
	k->region = strdup("eu-west-1");
	return k;
}

static void test_seal_awskms_creds__settings(void **state)
{
	(void)state;
	struct verr err = {0};
	struct awskms *k = bare();
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token", 1);
	unsetenv("AWS_ROLE_ARN");
	assert_int_equal(temp_sources(k, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "AWS_ROLE_ARN is not"));
	awskms_free(k);

	k = bare();
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	unsetenv("AWS_ENDPOINT_URL_STS");
	unsetenv("AWS_STS_REGIONAL_ENDPOINTS");
	unsetenv("AWS_ROLE_SESSION_NAME");
	assert_int_equal(temp_sources(k, &err), 0);
	assert_string_equal(k->sts_url, "https://sts.eu-west-1.amazonaws.com/");
	assert_non_null(strstr(k->session_name, "coffer-session-"));
	awskms_free(k);

	k = bare();
	setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy", 1);
	assert_int_equal(temp_sources(k, &err), 0);
	assert_string_equal(k->sts_url, "https://sts.amazonaws.com/");
	awskms_free(k);

	k = bare();
	setenv("AWS_ROLE_SESSION_NAME", "bad name", 1);
	assert_int_equal(temp_sources(k, &err), VERR_INVALID);
	awskms_free(k);
	unsetenv("AWS_ROLE_SESSION_NAME");
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");

	k = bare();
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok", 1);
	assert_int_equal(temp_sources(k, &err), 0);
	assert_string_equal(k->container_url, "http://169.254.170.2/v2/credentials/abc");
	assert_string_equal(k->container_token, "tok");
	awskms_free(k);
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/no-slash", 1);
	k = bare();
	assert_int_equal(temp_sources(k, &err), VERR_INVALID);
	awskms_free(k);
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_awskms_creds__sts_xml),
		cmocka_unit_test(test_seal_awskms_creds__form_encoding),
		cmocka_unit_test(test_seal_awskms_creds__container_hosts),
		cmocka_unit_test(test_seal_awskms_creds__settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
