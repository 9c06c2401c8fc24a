/*
 * x509gen.h - the cluster's own small certificate authority helpers: an
 * ECDSA P-256 self-signed CA, a fresh key pair, and a leaf certificate for
 * a given public key signed by such a CA. Used for the request-forwarding
 * cluster certificate (core/cluster.c) and the raft transport's CA and node
 * certificates (physical/raft_tls.c).
 *
 * Every function returns 0 or -1 (nothing partially allocated on failure).
 * Private keys come back as PEM in secmem (secmem_free(key, *key_len + 1));
 * certificates and public keys as malloc'd PEM.
 */
#ifndef COFFER_UTIL_X509GEN_H
#define COFFER_UTIL_X509GEN_H

#include <stddef.h>

/* A CA: CN = cn, SAN DNS = san (may be NULL), valid from an hour ago for
 * `days`; basicConstraints CA:TRUE, keyCertSign, EKU serverAuth+clientAuth. */
int x509gen_ca(const char *cn, const char *san, long days, char **cert_pem, char **key_pem,
	       size_t *key_len);
/* A fresh P-256 key pair: the private key (secmem) and its public key. */
int x509gen_keypair(char **key_pem, size_t *key_len, char **pub_pem);
/* A leaf certificate for pub_pem (a PEM public key), CN = cn, SAN DNS = cn
 * when cn is a DNS-safe name, CA:FALSE, digitalSignature, EKU
 * serverAuth+clientAuth, signed by the CA. -1 also when pub_pem is not a
 * P-256 public key. */
int x509gen_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
		  const char *cn, long days, char **cert_pem);
/* The subject CN of a PEM certificate into out (NUL-terminated); -1 when
 * there is none or it does not fit. */
int x509gen_cn(const char *cert_pem, char *out, size_t outsz);

#endif
