/*
 * transit.c - the transit secrets engine (type "transit"): encryption as a
 * service. This file holds the backend's life cycle (init, cleanup, the
 * periodic auto-rotation hook, invalidation), the path table in Vault's
 * layout, and the batch helpers every operation shares. The key policy and
 * cache are in keys.c, the cryptography in crypto.c, the handlers in
 * paths_keys.c (key management) and paths_crypto.c (operations). The DESIGN
 * block is in transit_int.h; the user's page is docs/secrets-transit.md.
 */
#include <stdlib.h>
#include <string.h>

#include "logical/tools.h"
#include "secrets/secrets.h"
#include "secrets/transit/transit_int.h"

/* ---- batch helpers ---- */

void transit__batch_status(struct logical_request *req, struct logical_response *resp,
			   bool ok_any, bool user_err, bool internal_err)
{
	if (!user_err && !internal_err)
		return;
	int code = user_err ? 400 : 500;
	if (ok_any && request_has(req, "partial_failure_response_code")) {
		int64_t c = request_int(req, "partial_failure_response_code");
		if (c < 1 || c > 599)
			logical_response_warn(resp, "invalid HTTP response code override from partial_failure_response_code, reverting to %d", code);
		else
			code = (int)c;
	}
	resp->status = code;
}

int transit__batch_input(const struct logical_request *req, json_t **out, struct verr *err)
{
	json_t *b = request_json(req, "batch_input");
	*out = NULL;
	if (!b || json_is_null(b))
		return 0;
	if (!json_is_array(b))
		return verr_set(err, VERR_INVALID, "failed to parse batch input: batch_input must be a list of objects");
	if (!json_array_size(b))
		return verr_set(err, VERR_INVALID, "missing batch input to process");
	if (json_array_size(b) > TRANSIT_MAX_BATCH)
		return verr_set(err, VERR_INVALID, "batch_input has %zu items; the maximum is %d",
				json_array_size(b), TRANSIT_MAX_BATCH);
	size_t i;
	json_t *e;
	json_array_foreach(b, i, e) {
		if (!json_is_object(e))
			return verr_set(err, VERR_INVALID, "failed to parse batch input: item %zu is not an object", i);
	}
	*out = b;
	return 0;
}

const char *transit__item_str(const struct logical_request *req, const json_t *item,
			      const char *name)
{
	if (!item)
		return request_has(req, name) ? request_str(req, name) : NULL;
	json_t *v = json_object_get(item, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int transit__item_int(const struct logical_request *req, const json_t *item, const char *name,
		      int64_t *out, struct verr *err)
{
	*out = 0;
	if (!item) {
		*out = request_int(req, name);
		return 0;
	}
	json_t *v = json_object_get(item, name);
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long long x = *s ? strtoll(s, &end, 10) : 0;
		if (*s && *end)
			return verr_set(err, VERR_INVALID, "invalid %s: expected an integer", name);
		*out = x;
		return 0;
	}
	return verr_set(err, VERR_INVALID, "invalid %s: expected an integer", name);
}

int transit__key_exists(struct logical_request *req, struct verr *err)
{
	struct transit *t = req->backend;
	struct tkey *k = NULL;
	int rc = transit__key_get(t, request_str(req, "name"), &k, err);
	if (rc)
		return rc;
	transit__key_release(t, k);
	return k != NULL;
}

/* ---- path table ---- */

#define NAME_FIELD {"name", FT_NAME, NULL, "Name of the key.", true}
#define BATCH_FIELDS                                                                      \
	{"batch_input", FT_ANY, NULL, "A list of items, each processed on its own.", false}, \
	{"partial_failure_response_code", FT_INT, NULL,                                       \
	 "HTTP status of a batch where some items failed and some succeeded.", false}

static const struct field_def keys_fields[] = {
	NAME_FIELD,
	{"type", FT_STRING, "aes256-gcm96", "Type of key.", false},
	{"derived", FT_BOOL, "false", "Derive a key per context.", false},
	{"convergent_encryption", FT_BOOL, "false", "Deterministic encryption (needs derived).", false},
	{"exportable", FT_BOOL, "false", "The key may be exported.", false},
	{"allow_plaintext_backup", FT_BOOL, "false", "The key may be backed up in plaintext.", false},
	{"auto_rotate_period", FT_DURATION, "0", "Rotate automatically after this long (0: never).", false},
	{"key_size", FT_INT, "0", "HMAC key size in bytes.", false},
	{"context", FT_STRING, NULL, "Base64 context: derived ed25519 public keys on read.", false},
	{NULL},
};

static const struct field_def import_fields[] = {
	NAME_FIELD,
	{"type", FT_STRING, "aes256-gcm96", "Type of the imported key.", false},
	{"hash_function", FT_STRING, "SHA256", "Hash of the RSA-OAEP layer: SHA1, SHA224, SHA256, SHA384, SHA512.", false},
	{"ciphertext", FT_STRING, NULL, "Base64: RSA-OAEP-wrapped AES-256 key, then the AES-KWP-wrapped key.", false},
	{"public_key", FT_STRING, NULL, "PEM public key (public-only import: not supported).", false},
	{"allow_rotation", FT_BOOL, "false", "The imported key may be rotated here.", false},
	{"derived", FT_BOOL, "false", "Derive a key per context.", false},
	{"exportable", FT_BOOL, "false", "The key may be exported.", false},
	{"allow_plaintext_backup", FT_BOOL, "false", "The key may be backed up in plaintext.", false},
	{"auto_rotate_period", FT_DURATION, "0", "Rotate automatically after this long (needs allow_rotation).", false},
	{"context", FT_STRING, NULL, "Base64 context (unused on import).", false},
	{"convergent_encryption", FT_BOOL, NULL, "Refused: imports cannot be convergent.", false},
	{NULL},
};

static const struct field_def import_version_fields[] = {
	NAME_FIELD,
	{"hash_function", FT_STRING, "SHA256", "Hash of the RSA-OAEP layer.", false},
	{"ciphertext", FT_STRING, NULL, "Base64: RSA-OAEP-wrapped AES-256 key, then the AES-KWP-wrapped key.", false},
	{"public_key", FT_STRING, NULL, "PEM public key (public-only import: not supported).", false},
	{"version", FT_INT, NULL, "Version to complete (public-only versions: none here).", false},
	{NULL},
};

static const struct field_def config_fields[] = {
	NAME_FIELD,
	{"min_decryption_version", FT_INT, NULL, "Oldest version that may decrypt/verify.", false},
	{"min_encryption_version", FT_INT, NULL, "Oldest version that may encrypt/sign (0: latest).", false},
	{"deletion_allowed", FT_BOOL, NULL, "The key may be deleted.", false},
	{"exportable", FT_BOOL, NULL, "The key may be exported (cannot be unset).", false},
	{"allow_plaintext_backup", FT_BOOL, NULL, "Plaintext backup allowed (cannot be unset).", false},
	{"auto_rotate_period", FT_DURATION, NULL, "Auto-rotation period (0: off, else >= 1h).", false},
	{NULL},
};

static const struct field_def name_only_fields[] = {NAME_FIELD, {NULL}};

static const struct field_def trim_fields[] = {
	NAME_FIELD,
	{"min_available_version", FT_INT, NULL, "Delete versions below this one.", false},
	{NULL},
};

static const struct field_def export_fields[] = {
	{"type", FT_STRING, NULL, "encryption-key, signing-key, hmac-key or public-key.", true},
	NAME_FIELD,
	{"version", FT_STRING, NULL, "Version number or \"latest\" (default: all).", false},
	{NULL},
};

static const struct field_def restore_fields[] = {
	{"name", FT_NAME, NULL, "Name to restore as (default: the backup's).", false},
	{"backup", FT_STRING, NULL, "The backup, as returned by backup/:name.", false},
	{"force", FT_BOOL, "false", "Overwrite an existing key.", false},
	{NULL},
};

static const struct field_def cache_fields[] = {
	{"size", FT_INT, "0", "Number of keys kept in memory (0: unlimited, else >= 10).", false},
	{NULL},
};

static const struct field_def encrypt_fields[] = {
	NAME_FIELD,
	{"plaintext", FT_STRING, NULL, "Base64 plaintext.", false},
	{"context", FT_STRING, NULL, "Base64 context for derived keys.", false},
	{"nonce", FT_STRING, NULL, "Not accepted by current convergent keys.", false},
	{"key_version", FT_INT, "0", "Version to encrypt with (0: latest).", false},
	{"associated_data", FT_STRING, NULL, "Base64 additional authenticated data.", false},
	{"type", FT_STRING, "aes256-gcm96", "Type of a key created by this call.", false},
	{"convergent_encryption", FT_BOOL, "false", "Convergent key created by this call.", false},
	{"reference", FT_STRING, NULL, "Echoed back in batch results.", false},
	BATCH_FIELDS,
	{NULL},
};

static const struct field_def decrypt_fields[] = {
	NAME_FIELD,
	{"ciphertext", FT_STRING, NULL, "vault:vN: ciphertext.", false},
	{"context", FT_STRING, NULL, "Base64 context for derived keys.", false},
	{"nonce", FT_STRING, NULL, "Unused.", false},
	{"associated_data", FT_STRING, NULL, "Base64 additional authenticated data.", false},
	{"key_version", FT_INT, "0", "rewrap: version to encrypt with (0: latest).", false},
	{"reference", FT_STRING, NULL, "Echoed back in batch results.", false},
	BATCH_FIELDS,
	{NULL},
};

static const struct field_def datakey_fields[] = {
	{"plaintext", FT_STRING, NULL, "\"plaintext\" or \"wrapped\".", true},
	NAME_FIELD,
	{"context", FT_STRING, NULL, "Base64 context for derived keys.", false},
	{"nonce", FT_STRING, NULL, "Not accepted by current convergent keys.", false},
	{"bits", FT_INT, "256", "Data key size: 128, 256 or 512.", false},
	{"key_version", FT_INT, "0", "Version to encrypt with (0: latest).", false},
	{"associated_data", FT_STRING, NULL, "Base64 additional authenticated data.", false},
	{NULL},
};

static const struct field_def hmac_fields[] = {
	NAME_FIELD,
	{"urlalgorithm", FT_STRING, NULL, "Hash algorithm (path form).", false},
	{"algorithm", FT_STRING, "sha2-256", "Hash algorithm.", false},
	{"input", FT_STRING, NULL, "Base64 input.", false},
	{"key_version", FT_INT, "0", "Version (0: latest).", false},
	{"reference", FT_STRING, NULL, "Echoed back in batch results.", false},
	BATCH_FIELDS,
	{NULL},
};

static const struct field_def sign_fields[] = {
	NAME_FIELD,
	{"urlalgorithm", FT_STRING, NULL, "Hash algorithm (path form).", false},
	{"hash_algorithm", FT_STRING, "sha2-256", "Hash algorithm.", false},
	{"algorithm", FT_STRING, NULL, "Deprecated name of hash_algorithm.", false},
	{"input", FT_STRING, NULL, "Base64 input.", false},
	{"context", FT_STRING, NULL, "Base64 context for derived ed25519 keys.", false},
	{"key_version", FT_INT, "0", "Version (0: latest).", false},
	{"prehashed", FT_BOOL, "false", "The input is already a digest.", false},
	{"signature_algorithm", FT_STRING, "pss", "RSA: pss or pkcs1v15.", false},
	{"marshaling_algorithm", FT_STRING, "asn1", "ECDSA: asn1 or jws.", false},
	{"salt_length", FT_STRING, "auto", "RSA-PSS salt: auto, hash or bytes.", false},
	{"signature", FT_STRING, NULL, "verify: the signature.", false},
	{"hmac", FT_STRING, NULL, "verify: the HMAC.", false},
	{"reference", FT_STRING, NULL, "Echoed back in batch results.", false},
	BATCH_FIELDS,
	{NULL},
};

#define UPD(fn) {{LOP_UPDATE, fn}}

static const struct path_def transit_paths[] = {
	{.pattern = "keys/?", .ops = {{LOP_LIST, transit__keys_list}},
	 .help = "List the named keys."},
	{.pattern = "keys/{name}", .fields = keys_fields,
	 .ops = {{LOP_READ, transit__keys_read},
		 {LOP_UPDATE, transit__keys_write},
		 {LOP_DELETE, transit__keys_delete}},
	 .help = "Create, read or delete a named key."},
	{.pattern = "keys/{name}/import", .fields = import_fields, .ops = UPD(transit__import_path),
	 .help = "Import (BYOK) externally generated key material as a new key."},
	{.pattern = "keys/{name}/import_version", .fields = import_version_fields,
	 .ops = UPD(transit__import_version_path),
	 .help = "Import new key material as the next version of an imported key."},
	{.pattern = "wrapping_key", .ops = {{LOP_READ, transit__wrapping_key_path}},
	 .help = "The mount's RSA-4096 public key for wrapping keys to import."},
	{.pattern = "keys/{name}/config", .fields = config_fields, .ops = UPD(transit__keys_config),
	 .help = "Configure a named key's version limits, deletion and export."},
	{.pattern = "keys/{name}/rotate", .fields = name_only_fields, .ops = UPD(transit__keys_rotate),
	 .help = "Add a new version of a key; new operations use it."},
	{.pattern = "keys/{name}/trim", .fields = trim_fields, .ops = UPD(transit__keys_trim),
	 .help = "Delete the key versions below min_available_version."},
	{.pattern = "export/{type}/{name}", .fields = export_fields,
	 .ops = {{LOP_READ, transit__export}}, .help = "Export an exportable key's versions."},
	{.pattern = "export/{type}/{name}/{version}", .fields = export_fields,
	 .ops = {{LOP_READ, transit__export}}, .help = "Export one version of an exportable key."},
	{.pattern = "backup/{name}", .fields = name_only_fields, .ops = {{LOP_READ, transit__backup}},
	 .help = "Back up a key (allow_plaintext_backup and exportable must be set)."},
	{.pattern = "restore", .fields = restore_fields, .ops = UPD(transit__restore),
	 .help = "Restore a key from a backup."},
	{.pattern = "restore/{name}", .fields = restore_fields, .ops = UPD(transit__restore),
	 .help = "Restore a key from a backup under this name."},
	{.pattern = "cache-config", .fields = cache_fields,
	 .ops = {{LOP_READ, transit__cache_config_read}, {LOP_UPDATE, transit__cache_config_write}},
	 .help = "Size of the in-memory key cache."},
	{.pattern = "encrypt/{name}", .fields = encrypt_fields,
	 .ops = {{LOP_CREATE, transit__encrypt_path}, {LOP_UPDATE, transit__encrypt_path}},
	 .exists = transit__key_exists,
	 .help = "Encrypt base64 plaintext (or a batch); creates the key if it does not exist."},
	{.pattern = "decrypt/{name}", .fields = decrypt_fields, .ops = UPD(transit__decrypt_path),
	 .help = "Decrypt a ciphertext (or a batch)."},
	{.pattern = "rewrap/{name}", .fields = decrypt_fields, .ops = UPD(transit__rewrap_path),
	 .help = "Re-encrypt a ciphertext with the latest (or a given) key version."},
	{.pattern = "datakey/{plaintext}/{name}", .fields = datakey_fields,
	 .ops = UPD(transit__datakey_path),
	 .help = "Generate a data key, returned encrypted (and in plaintext for 'plaintext')."},
	{.pattern = "hmac/{name}", .fields = hmac_fields, .ops = UPD(transit__hmac_path),
	 .help = "HMAC base64 input with the key's HMAC key."},
	{.pattern = "hmac/{name}/{urlalgorithm}", .fields = hmac_fields, .ops = UPD(transit__hmac_path),
	 .help = "HMAC base64 input with the key's HMAC key."},
	{.pattern = "sign/{name}", .fields = sign_fields, .ops = UPD(transit__sign_path),
	 .help = "Sign base64 input with an asymmetric key."},
	{.pattern = "sign/{name}/{urlalgorithm}", .fields = sign_fields, .ops = UPD(transit__sign_path),
	 .help = "Sign base64 input with an asymmetric key."},
	{.pattern = "verify/{name}", .fields = sign_fields, .ops = UPD(transit__verify_path),
	 .help = "Verify a signature or an HMAC."},
	{.pattern = "verify/{name}/{urlalgorithm}", .fields = sign_fields,
	 .ops = UPD(transit__verify_path), .help = "Verify a signature or an HMAC."},
	{.pattern = "hash", .fields = logical_tools_hash_fields, .ops = UPD(logical_tools_hash),
	 .help = "Hash base64 input."},
	{.pattern = "hash/{urlalgorithm}", .fields = logical_tools_hash_fields, .ops = UPD(logical_tools_hash),
	 .help = "Hash base64 input."},
	{.pattern = "random", .fields = logical_tools_random_fields, .ops = UPD(logical_tools_random),
	 .help = "Random bytes."},
	{.pattern = "random/{source}", .fields = logical_tools_random_fields, .ops = UPD(logical_tools_random),
	 .help = "Random bytes (the segment is a byte count or a source)."},
	{.pattern = "random/{source}/{urlbytes}", .fields = logical_tools_random_fields,
	 .ops = UPD(logical_tools_random), .help = "Random bytes from a source."},
	{NULL},
};

/* ---- life cycle ---- */

static int transit_init(void **out, const struct mount_info *mi, struct verr *err)
{
	struct transit *t = calloc(1, sizeof(*t));
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	t->view = mi->storage;
	t->sys = mi->sys;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->create_lock, NULL);
	pthread_mutex_init(&t->wrap_lock, NULL);
	json_t *cfg = NULL;
	int rc = view_get_json(t->view, "config/cache", &cfg, err);
	if (rc) {
		pthread_mutex_destroy(&t->lock);
		pthread_mutex_destroy(&t->create_lock);
		pthread_mutex_destroy(&t->wrap_lock);
		free(t);
		return rc;
	}
	json_t *sz = json_object_get(cfg, "size");
	if (json_is_integer(sz) && json_integer_value(sz) > 0)
		t->cache_size = (size_t)json_integer_value(sz);
	json_decref(cfg);
	*out = t;
	return 0;
}

/* Mount teardown (unmount, seal, step-down): every cached key is wiped. */
static void transit_cleanup(void *inst)
{
	struct transit *t = inst;
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	while (t->nkeys) {
		struct tkey *k = t->keys[--t->nkeys];
		k->cached = false;
		if (k->refs == 0)
			transit__key_free(k);
	}
	pthread_mutex_unlock(&t->lock);
	free(t->keys);
	transit__wrap_forget(t);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->create_lock);
	pthread_mutex_destroy(&t->wrap_lock);
	free(t);
}

static const struct path_def *transit_table(void *inst)
{
	return transit_paths;
}

static int transit_periodic(void *inst, struct verr *err)
{
	return transit__periodic(inst, err);
}

static void transit_invalidate(void *inst, const char *key)
{
	if (!strncmp(key, "policy/", 7))
		transit__cache_evict(inst, key + 7);
	else if (!strcmp(key, "wrapping_key"))
		transit__wrap_forget(inst);
}

const struct backend_ops transit_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "transit",
	.init = transit_init,
	.cleanup = transit_cleanup,
	.paths = transit_table,
	.periodic = transit_periodic,
	.invalidate = transit_invalidate,
};
