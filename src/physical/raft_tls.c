/*
 * raft_tls.c - the raft transport's credentials: the cluster's raft CA,
 * this node's key and certificate, and the files in <path>/tls/ that let a
 * restarted, still sealed node talk raft (docs/storage-raft.md, "Raft over
 * mutual TLS").
 *
 *   tls/node.key  this node's P-256 key (0600)
 *   tls/node.crt  its certificate, CN = node_id, signed by the raft CA
 *   tls/ca.crt    the raft CA certificate (the only trust anchor)
 *   tls/ca.key    the CA key, on the bootstrap node only, from bootstrap
 *                 until the node is first active: the core then stores the
 *                 CA below the barrier (core/raft/tls) and removes this file
 *
 * Every file is written to a temporary name, fsync'd, renamed and the
 * directory fsync'd. Key PEMs in memory live in secmem. `mu` guards all of
 * it: request threads (join, signing) and the loop (bootstrap, the
 * transport's SSL_CTX) both use it.
 */
#include "physical/raft_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/secmem.h"
#include "util/x509gen.h"

#define CA_DAYS (20L * 365)
#define NODE_DAYS (10L * 365)

static void key_free(char **k, size_t *len)
{
	if (*k)
		secmem_free(*k, *len + 1);
	*k = NULL;
	*len = 0;
}

static char *file_path(const struct rtls *t, const char *name)
{
	size_t n = strlen(t->dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", t->dir, name);
	return p;
}

/* the whole file into secmem (secret) or malloc; NULL when absent */
static char *read_file(const struct rtls *t, const char *name, bool secret, size_t *len,
		       struct verr *err)
{
	char *p = file_path(t, name);
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	char *out = NULL;
	if (fd < 0) {
		if (p && errno != ENOENT)
			verr_set(err, VERR_INVALID, "storage \"raft\": cannot read %s: %s", p,
				 strerror(errno));
		free(p);
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > 65536) {
		verr_set(err, VERR_INVALID, "storage \"raft\": %s is empty or too large", p);
		goto out;
	}
	size_t n = (size_t)st.st_size;
	out = secret ? secmem_alloc(n + 1) : malloc(n + 1);
	if (!out || read(fd, out, n) != (ssize_t)n) {
		verr_set(err, VERR_INVALID, "storage \"raft\": cannot read %s", p);
		if (out && secret)
			secmem_free(out, n + 1);
		else
			free(out);
		out = NULL;
		goto out;
	}
	out[n] = '\0';
	if (len)
		*len = n;
out:
	close(fd);
	free(p);
	return out;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* name := data, atomically and durably */
static int write_file(const struct rtls *t, const char *name, const char *data, mode_t mode,
		      struct verr *err)
{
	char *p = file_path(t, name);
	size_t tl = p ? strlen(p) + 5 : 0;
	char *tmp = p ? malloc(tl) : NULL;
	if (!tmp) {
		free(p);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	snprintf(tmp, tl, "%s.tmp", p);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(data);
	int rc = 0;
	if (fd < 0 || write(fd, data, n) != (ssize_t)n || fsync(fd) || close(fd) ||
	    rename(tmp, p) || fsync_dir(t->dir)) {
		rc = verr_set(err, VERR_INTERNAL, "storage \"raft\": cannot write %s: %s", p,
			      strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	free(tmp);
	free(p);
	return rc;
}

int rstore__tls_open(struct rtls *t, const char *dir, const char *node_id, bool has_state,
		     struct verr *err)
{
	pthread_mutex_init(&t->mu, NULL);
	size_t n = strlen(dir) + 5;
	t->dir = malloc(n);
	t->node_id = strdup(node_id);
	if (!t->dir || !t->node_id)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	snprintf(t->dir, n, "%s/tls", dir);
	if (mkdir(t->dir, 0700) && errno != EEXIST)
		return verr_set(err, VERR_INVALID, "storage \"raft\": cannot create %s: %s", t->dir,
				strerror(errno));
	chmod(t->dir, 0700);
	struct verr e = {0};
	t->ca_cert = read_file(t, "ca.crt", false, NULL, &e);
	t->node_cert = read_file(t, "node.crt", false, NULL, &e);
	t->node_key = read_file(t, "node.key", true, &t->node_key_len, &e);
	t->ca_key = read_file(t, "ca.key", true, &t->ca_key_len, &e);
	if (e.code) {
		*err = e;
		return e.code;
	}
	bool have = t->ca_cert && t->node_cert && t->node_key;
	if (has_state && !have)
		return verr_set(err, VERR_INVALID,
				"storage \"raft\": %s holds raft data but %s has no TLS "
				"credentials (ca.crt, node.crt, node.key): raft traffic is mutual "
				"TLS only; this data directory predates it - rejoin the node to "
				"the cluster with an empty path, or restore a snapshot into a new "
				"cluster",
				dir, t->dir);
	if (have) {
		char cn[128];
		if (x509gen_cn(t->node_cert, cn, sizeof(cn)) || strcmp(cn, node_id))
			return verr_set(err, VERR_INVALID,
					"storage \"raft\": %s/node.crt is not a certificate for "
					"node_id \"%s\"",
					t->dir, node_id);
		t->ready = true;
	}
	return 0;
}

void rstore__tls_close(struct rtls *t)
{
	if (!t->dir)
		return;
	free(t->dir);
	free(t->node_id);
	free(t->ca_cert);
	free(t->node_cert);
	key_free(&t->node_key, &t->node_key_len);
	key_free(&t->ca_key, &t->ca_key_len);
	key_free(&t->pending_key, &t->pending_len);
	free(t->revoked);
	free(t->issued);
	pthread_mutex_destroy(&t->mu);
	memset(t, 0, sizeof(*t));
}

/* fp on list[0..n): its index, or -1 (mu held). Fingerprints are public
 * (they identify, they do not authenticate): an ordinary comparison. */
static long fp_find(const struct rcertfp *list, size_t n, const char *fp)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].fp, fp))
			return (long)i;
	return -1;
}

/* append (id, fp) to *list unless it is there; 0 or VERR_INTERNAL (mu held) */
static int fp_add(struct rcertfp **list, size_t *n, raft_id id, const char *fp)
{
	if (fp_find(*list, *n, fp) >= 0)
		return 0;
	struct rcertfp *nl = realloc(*list, (*n + 1) * sizeof(*nl));
	if (!nl)
		return VERR_INTERNAL;
	*list = nl;
	nl[*n].id = id;
	memcpy(nl[*n].fp, fp, RSTORE_FP_HEX);
	(*n)++;
	return 0;
}

bool rstore__fp_valid(const char *fp)
{
	if (strlen(fp) != RSTORE_FP_HEX - 1)
		return false;
	for (const char *p = fp; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int rstore__tls_revoke(struct rtls *t, raft_id id, const char *fp)
{
	if (strlen(fp) != RSTORE_FP_HEX - 1)
		return VERR_INVALID;
	pthread_mutex_lock(&t->mu);
	int rc = fp_add(&t->revoked, &t->nrevoked, id, fp);
	long i = rc ? -1 : fp_find(t->issued, t->nissued, fp);
	if (i >= 0) /* a revoked certificate is no longer a live one */
		t->issued[i] = t->issued[--t->nissued];
	pthread_mutex_unlock(&t->mu);
	return rc;
}

bool rstore__tls_revoked(struct rtls *t, const char *fp)
{
	pthread_mutex_lock(&t->mu);
	bool r = fp_find(t->revoked, t->nrevoked, fp) >= 0;
	pthread_mutex_unlock(&t->mu);
	return r;
}

int rstore__tls_record_issued(struct rtls *t, raft_id id, const char *fp)
{
	if (!rstore__fp_valid(fp))
		return VERR_INVALID;
	pthread_mutex_lock(&t->mu);
	int rc = fp_find(t->revoked, t->nrevoked, fp) >= 0 ? 0
								 : fp_add(&t->issued, &t->nissued, id, fp);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

bool rstore__tls_issued(struct rtls *t, const char *fp)
{
	pthread_mutex_lock(&t->mu);
	bool r = fp_find(t->issued, t->nissued, fp) >= 0;
	pthread_mutex_unlock(&t->mu);
	return r;
}

int rstore__tls_revoke_member(struct rtls *t, raft_id id, const char *fp, size_t *n)
{
	if (n)
		*n = 0;
	if (fp && !rstore__fp_valid(fp))
		return VERR_INVALID;
	pthread_mutex_lock(&t->mu);
	size_t before = t->nrevoked;
	int rc = fp ? fp_add(&t->revoked, &t->nrevoked, id, fp) : 0;
	/* every certificate recorded for the member; the issued list keeps
	 * the others, in order */
	size_t keep = 0;
	for (size_t i = 0; i < t->nissued; i++) {
		bool mine = !rc && t->issued[i].id == id;
		if (mine)
			rc = fp_add(&t->revoked, &t->nrevoked, id, t->issued[i].fp);
		if (!mine || rc)
			t->issued[keep++] = t->issued[i];
	}
	t->nissued = keep;
	if (n)
		*n = t->nrevoked - before;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

size_t rstore__tls_revoked_of(struct rtls *t, raft_id id)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nrevoked; i++)
		n += t->revoked[i].id == id;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void rstore__tls_set_lists(struct rtls *t, struct rcertfp *revoked, size_t nrevoked,
			   struct rcertfp *issued, size_t nissued)
{
	pthread_mutex_lock(&t->mu);
	free(t->revoked);
	free(t->issued);
	t->revoked = revoked;
	t->nrevoked = nrevoked;
	t->issued = issued;
	t->nissued = nissued;
	pthread_mutex_unlock(&t->mu);
}

int rstore__tls_fp_x509(X509 *x, char fp[RSTORE_FP_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	if (!x || X509_digest(x, EVP_sha256(), md, &ml) != 1 || ml != (RSTORE_FP_HEX - 1) / 2)
		return -1;
	for (unsigned int i = 0; i < ml; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int rstore__tls_fp_pem(const char *pem, char fp[RSTORE_FP_HEX])
{
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int rc = x ? rstore__tls_fp_x509(x, fp) : -1;
	X509_free(x);
	BIO_free(b);
	return rc;
}

int rstore__tls_own_fp(struct rtls *t, char fp[RSTORE_FP_HEX])
{
	pthread_mutex_lock(&t->mu);
	int rc = t->node_cert ? rstore__tls_fp_pem(t->node_cert, fp) : -1;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int rstore__tls_bootstrap(struct rtls *t, struct verr *err)
{
	char *cc = NULL, *ck = NULL, *nk = NULL, *pub = NULL, *nc = NULL;
	size_t ckl = 0, nkl = 0;
	char cn[160];
	snprintf(cn, sizeof(cn), "coffer-raft-ca-%s", t->node_id);
	int rc = 0;
	if (x509gen_ca(cn, NULL, CA_DAYS, &cc, &ck, &ckl) || x509gen_keypair(&nk, &nkl, &pub) ||
	    x509gen_issue(cc, ck, pub, t->node_id, NODE_DAYS, &nc))
		rc = verr_set(err, VERR_INTERNAL, "could not generate the raft TLS credentials");
	free(pub);
	pthread_mutex_lock(&t->mu);
	/* the CA key first: a crash in between leaves a CA to finish with */
	if (!rc)
		rc = write_file(t, "ca.key", ck, 0600, err);
	if (!rc)
		rc = write_file(t, "node.key", nk, 0600, err);
	if (!rc)
		rc = write_file(t, "node.crt", nc, 0644, err);
	if (!rc)
		rc = write_file(t, "ca.crt", cc, 0644, err);
	if (!rc) {
		free(t->ca_cert);
		free(t->node_cert);
		key_free(&t->node_key, &t->node_key_len);
		key_free(&t->ca_key, &t->ca_key_len);
		t->ca_cert = cc;
		t->node_cert = nc;
		t->node_key = nk;
		t->node_key_len = nkl;
		t->ca_key = ck;
		t->ca_key_len = ckl;
		t->ready = true;
		cc = nc = nk = ck = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	free(cc);
	free(nc);
	key_free(&nk, &nkl);
	key_free(&ck, &ckl);
	if (!rc)
		log_info("raft", "generated the raft CA and this node's raft certificate in %s",
			 t->dir);
	return rc;
}

int rstore__tls_keygen(struct rtls *t, char **pub_pem, struct verr *err)
{
	char *k = NULL;
	size_t kl = 0;
	if (x509gen_keypair(&k, &kl, pub_pem))
		return verr_set(err, VERR_INTERNAL, "could not generate the raft TLS key");
	pthread_mutex_lock(&t->mu);
	key_free(&t->pending_key, &t->pending_len);
	t->pending_key = k;
	t->pending_len = kl;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* cert_pem must be for node_id, chain to ca_pem, and match the private key */
static int check_issued(const char *cert_pem, const char *ca_pem, const char *key_pem,
			const char *node_id, struct verr *err)
{
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *ab = BIO_new_mem_buf(ca_pem, -1),
	    *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	X509 *ca = ab ? PEM_read_bio_X509(ab, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *cap = ca ? X509_get0_pubkey(ca) : NULL;
	char cn[128];
	int rc = 0;
	if (!x || !ca || !k)
		rc = verr_set(err, VERR_INVALID, "the leader's raft certificate or CA is not PEM");
	else if (!cap || X509_verify(x, cap) != 1)
		rc = verr_set(err, VERR_INVALID, "the leader's raft certificate is not signed by "
						 "its raft CA");
	else if (!X509_check_private_key(x, k))
		rc = verr_set(err, VERR_INVALID,
			      "the leader's raft certificate is not for this node's key");
	else if (x509gen_cn(cert_pem, cn, sizeof(cn)) || strcmp(cn, node_id))
		rc = verr_set(err, VERR_INVALID,
			      "the leader's raft certificate is not for node_id \"%s\"", node_id);
	EVP_PKEY_free(k);
	X509_free(ca);
	X509_free(x);
	BIO_free(cb);
	BIO_free(ab);
	BIO_free(kb);
	return rc;
}

int rstore__tls_install(struct rtls *t, const char *cert_pem, const char *ca_pem,
			struct verr *err)
{
	pthread_mutex_lock(&t->mu);
	int rc = 0;
	if (!t->pending_key)
		rc = verr_set(err, VERR_INVALID, "no raft TLS key was generated for this join");
	if (!rc)
		rc = check_issued(cert_pem, ca_pem, t->pending_key, t->node_id, err);
	char *cc = rc ? NULL : strdup(ca_pem), *nc = rc ? NULL : strdup(cert_pem);
	if (!rc && (!cc || !nc))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = write_file(t, "node.key", t->pending_key, 0600, err);
	if (!rc)
		rc = write_file(t, "node.crt", cert_pem, 0644, err);
	if (!rc)
		rc = write_file(t, "ca.crt", ca_pem, 0644, err);
	if (!rc) {
		char *p = file_path(t, "ca.key"); /* another cluster's, from an old bootstrap */
		if (p && unlink(p) == 0)
			fsync_dir(t->dir);
		free(p);
		key_free(&t->ca_key, &t->ca_key_len);
		free(t->ca_cert);
		free(t->node_cert);
		key_free(&t->node_key, &t->node_key_len);
		t->ca_cert = cc;
		t->node_cert = nc;
		t->node_key = t->pending_key;
		t->node_key_len = t->pending_len;
		t->pending_key = NULL;
		t->pending_len = 0;
		t->ready = true;
		cc = nc = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	free(cc);
	free(nc);
	return rc;
}

/* ---- raft.h: the CA ------------------------------------------------------------ */

static struct rtls *tls_of(struct physical *p, struct verr *err)
{
	if (!physical_is_raft(p)) {
		verr_set(err, VERR_INVALID, "the storage backend is not raft");
		return NULL;
	}
	return &((struct rstore *)p)->tls;
}

int physical_raft_tls_keygen(struct physical *p, char **pub_pem, struct verr *err)
{
	struct rtls *t = tls_of(p, err);
	return t ? rstore__tls_keygen(t, pub_pem, err) : VERR_INVALID;
}

int physical_raft_tls_install(struct physical *p, const char *cert_pem, const char *ca_pem,
			      struct verr *err)
{
	struct rtls *t = tls_of(p, err);
	return t ? rstore__tls_install(t, cert_pem, ca_pem, err) : VERR_INVALID;
}

int physical_raft_tls_sign(struct physical *p, const char *node_id, const char *pub_pem,
			   char **cert_pem, char **ca_pem, struct verr *err)
{
	*cert_pem = *ca_pem = NULL;
	struct rtls *t = tls_of(p, err);
	if (!t)
		return VERR_INVALID;
	/* refuse garbage before touching the CA key */
	BIO *b = BIO_new_mem_buf(pub_pem, -1);
	EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	bool ec = pk && EVP_PKEY_is_a(pk, "EC");
	EVP_PKEY_free(pk);
	if (!ec)
		return verr_set(err, VERR_INVALID,
				"raft_public_key is not a PEM-encoded P-256 public key");
	pthread_mutex_lock(&t->mu);
	int rc = 0;
	if (!t->ca_key || !t->ca_cert)
		rc = verr_set(err, VERR_UNAVAILABLE,
			      "this node does not hold the raft CA (only the active node signs "
			      "joiners)");
	else if (x509gen_issue(t->ca_cert, t->ca_key, pub_pem, node_id, NODE_DAYS, cert_pem))
		rc = verr_set(err, VERR_INVALID,
			      "raft_public_key is not a PEM-encoded P-256 public key");
	else if (!(*ca_pem = strdup(t->ca_cert)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_unlock(&t->mu);
	/* recorded through the log before the certificate leaves this node,
	 * so remove-peer can revoke it on any leader, whether or not the
	 * joiner ever connected to that one (fail closed: unrecorded, it is
	 * not handed out) */
	char fp[RSTORE_FP_HEX];
	uint8_t *rec = NULL;
	size_t len = 0;
	if (!rc && rstore__tls_fp_pem(*cert_pem, fp))
		rc = verr_set(err, VERR_INTERNAL, "cannot fingerprint the issued raft certificate");
	if (!rc && rstore__encode_idstr(&rec, &len, RREC_ISSUED, rstore__id_for(node_id), fp))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = rstore__submit_record((struct rstore *)p, rec, len, err);
	if (rc) {
		free(*cert_pem);
		free(*ca_pem);
		*cert_pem = *ca_pem = NULL;
	}
	return rc;
}

int physical_raft_tls_ca(struct physical *p, char **cert_pem, char **key_pem, size_t *key_len,
			 struct verr *err)
{
	*cert_pem = *key_pem = NULL;
	*key_len = 0;
	struct rtls *t = tls_of(p, err);
	if (!t)
		return VERR_INVALID;
	pthread_mutex_lock(&t->mu);
	int rc = VERR_NOT_FOUND;
	if (t->ca_key && t->ca_cert) {
		*cert_pem = strdup(t->ca_cert);
		*key_pem = secmem_alloc(t->ca_key_len + 1);
		rc = *cert_pem && *key_pem ? 0 : VERR_INTERNAL;
		if (!rc) {
			memcpy(*key_pem, t->ca_key, t->ca_key_len + 1);
			*key_len = t->ca_key_len;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (rc == VERR_INTERNAL) {
		free(*cert_pem);
		key_free(key_pem, key_len);
		*cert_pem = NULL;
	}
	return rc == VERR_NOT_FOUND ? verr_set(err, rc, "no raft CA key on this node")
				    : rc ? verr_set(err, rc, "out of memory")
					 : 0;
}

int physical_raft_tls_set_ca(struct physical *p, const char *cert_pem, const char *key_pem,
			     struct verr *err)
{
	struct rtls *t = tls_of(p, err);
	if (!t)
		return VERR_INVALID;
	size_t kl = strlen(key_pem);
	char *k = secmem_alloc(kl + 1), *c = strdup(cert_pem);
	if (!k || !c) {
		free(c);
		key_free(&k, &kl);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	memcpy(k, key_pem, kl + 1);
	pthread_mutex_lock(&t->mu);
	int rc = 0;
	if (t->ca_cert && strcmp(t->ca_cert, cert_pem))
		rc = verr_set(err, VERR_INVALID,
			      "the raft CA below the barrier is not the one this node trusts");
	if (!rc) {
		key_free(&t->ca_key, &t->ca_key_len);
		free(t->ca_cert);
		t->ca_key = k;
		t->ca_key_len = kl;
		t->ca_cert = c;
		k = c = NULL;
		/* the barrier holds it now: no copy stays on local disk */
		char *f = file_path(t, "ca.key");
		if (f && unlink(f) == 0) {
			fsync_dir(t->dir);
			log_info("raft", "the raft CA key is below the barrier; removed %s", f);
		}
		free(f);
	}
	pthread_mutex_unlock(&t->mu);
	free(c);
	key_free(&k, &kl);
	return rc;
}

void physical_raft_tls_drop_ca(struct physical *p)
{
	struct rtls *t = tls_of(p, NULL);
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	char *f = file_path(t, "ca.key");
	bool on_disk = f && access(f, F_OK) == 0;
	free(f);
	if (!on_disk) /* the bootstrap node keeps it until it is moved */
		key_free(&t->ca_key, &t->ca_key_len);
	pthread_mutex_unlock(&t->mu);
}
