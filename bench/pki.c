/*
 * bench/pki.c - the PKI engine's hot paths, in-process through the engine's
 * own path table (framework_handle, as the core dispatches) over an inmem
 * store; built and run by bench/pki.sh, which adds the HTTP figures (wrk).
 *
 * Reports, one thread each: issue/s for EC P-256 with no_store and stored,
 * RSA-2048 issue/s (key generation bound), and the time to encode and sign
 * a CRL of N revoked serials (default 1,000,000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logical/logical.h"
#include "secrets/pki/pki_int.h"
#include "secrets/secrets.h"
#include "util/rand.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct env {
	struct physical *phys;
	struct storage_view view;
	void *inst;
};

static int run(struct env *e, enum logical_op op, const char *path, json_t *data)
{
	struct logical_response resp = {0};
	struct verr err = {0};
	struct logical_request req = {.op = op, .rel_path = path, .data = data, .storage = &e->view,
				      .backend = e->inst, .mount_type = "pki"};
	int rc = framework_handle(pki_backend_ops.paths(e->inst), &req, &resp, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", path, err.msg);
	logical_response_reset(&resp);
	json_decref(data);
	return rc;
}

static double rate(struct env *e, const char *path, double secs)
{
	double t0 = now_s(), t;
	long n = 0;
	do {
		if (run(e, LOP_UPDATE, path, json_pack("{s:s}", "common_name", "api.myapp.example.com")))
			return -1;
		n++;
	} while ((t = now_s()) - t0 < secs);
	return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
	size_t ncrl = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	double secs = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	struct env e = {0};
	struct verr err = {0};
	if (physical_inmem_new(&e.phys, NULL, NULL))
		return 1;
	storage_view_init(&e.view, e.phys, "logical/bench/");
	struct mount_info mi = {.path = "pki/", .uuid = "bench", .type = "pki", .storage = &e.view};
	if (pki_backend_ops.init(&e.inst, &mi, &err))
		return 1;
	if (run(&e, LOP_UPDATE, "root/generate/internal",
		json_pack("{s:s,s:s,s:s}", "common_name", "example.com", "key_type", "ec", "ttl", "700h")) ||
	    run(&e, LOP_UPDATE, "roles/ec-nostore",
		json_pack("{s:s,s:b,s:s,s:b,s:s}", "allowed_domains", "myapp.example.com",
			  "allow_subdomains", 1, "key_type", "ec", "no_store", 1, "ttl", "72h")) ||
	    run(&e, LOP_UPDATE, "roles/ec-stored",
		json_pack("{s:s,s:b,s:s,s:s}", "allowed_domains", "myapp.example.com",
			  "allow_subdomains", 1, "key_type", "ec", "ttl", "72h")) ||
	    run(&e, LOP_UPDATE, "roles/rsa",
		json_pack("{s:s,s:b,s:s,s:s}", "allowed_domains", "myapp.example.com",
			  "allow_subdomains", 1, "key_type", "rsa", "ttl", "72h")))
		return 1;
	double a = rate(&e, "issue/ec-nostore", secs);
	double b = rate(&e, "issue/ec-stored", secs);
	double c = rate(&e, "issue/rsa", secs);

	struct pki_state *st = pki__state_get(e.inst);
	struct pki_revoked *v = malloc(ncrl * sizeof(*v));
	for (size_t i = 0; i < ncrl; i++) {
		v[i].len = 20;
		if (rand_bytes(v[i].serial, 20, NULL))
			return 1;
		v[i].serial[0] &= 0x7f;
		v[i].time = 1700000000 + (int64_t)i;
	}
	double t0 = now_s();
	pki__crl_sort(v, ncrl);
	double t1 = now_s();
	uint8_t *der = NULL;
	size_t len = 0;
	if (pki__crl_encode(st->def, v, ncrl, 1, 1700000000, 1700259200, &der, &len, &err))
		return 1;
	double t2 = now_s();
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	int ok = crl && X509_CRL_verify(crl, X509_get0_pubkey(st->def->cert)) == 1 &&
		 sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == (int)ncrl;
	X509_CRL_free(crl);
	pki__state_put(e.inst, st);

	printf("| case | result |\n|---|---|\n");
	printf("| issue EC P-256, no_store (engine, 1 thread) | %.0f certs/s |\n", a);
	printf("| issue EC P-256, stored (engine, inmem, 1 thread) | %.0f certs/s |\n", b);
	printf("| issue RSA-2048 (engine, 1 thread; key generation bound) | %.1f certs/s |\n", c);
	printf("| CRL of %zu revoked serials: sort | %.3f s |\n", ncrl, t1 - t0);
	printf("| CRL of %zu revoked serials: encode + sign (EC P-256) | %.3f s, %.1f MB, OpenSSL parses and verifies it: %s |\n",
	       ncrl, t2 - t1, (double)len / 1e6, ok ? "yes" : "NO");
	free(der);
	free(v);
	pki_backend_ops.cleanup(e.inst);
	physical_close(e.phys);
	return ok ? 0 : 1;
}
