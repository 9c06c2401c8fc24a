/*
 * server.c - `coffer server`: load the configuration, build the storage, the
 * core and the listeners from the registry tables, print the banner, then
 * wait for signals (SIGHUP reloads log level and TLS certificates; SIGTERM and
 * SIGINT stop accepting, finish in-flight requests, wipe keys and exit 0).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/core.h"
#include "core/sys_raft.h"
#include "http/http.h"
#include "server/config.h"
#include "seal/seal.h"
#include "server/registry.h"
#include "util/duration.h"
#include "util/hcl.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/secmem.h"

#define MAX_CONFIGS 64

struct server_args {
	char *configs[MAX_CONFIGS];
	size_t nconfigs;
	bool dev;
	const char *dev_root_token_id;
	const char *dev_listen_address;
	const char *log_level;
	const char *log_format;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: coffer server [options]\n\n"
		   "  Start a Coffer server from one or more configuration files (HCL or JSON).\n\n"
		   "  Start with a configuration file:\n      $ coffer server -config=/etc/coffer/coffer.hcl\n\n"
		   "  Start a throw-away in-memory development server:\n      $ coffer server -dev\n\n"
		   "Options:\n"
		   "  -config=PATH               A file or a directory of .hcl/.json files; repeatable.\n"
		   "  -dev                       In-memory, initialised and unsealed; prints the root token.\n"
		   "  -dev-root-token-id=ID      The root token to create in dev mode.\n"
		   "  -dev-listen-address=ADDR   Dev listener address (default 127.0.0.1:8200).\n"
		   "  -log-level=LEVEL           trace, debug, info, warn or error.\n"
		   "  -log-format=FORMAT         standard or json.\n");
}

/* Accept -flag=value, --flag=value and -flag value. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
	const char *a = argv[*i];
	*matched = false;
	if (a[0] != '-')
		return NULL;
	a++;
	if (a[0] == '-')
		a++;
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=') {
		*matched = true;
		return a + n + 1;
	}
	if (a[n] == '\0') {
		*matched = true;
		if (*i + 1 < argc)
			return argv[++*i];
		return NULL;
	}
	return NULL;
}

static int parse_args(struct server_args *a, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		bool m;
		const char *v;
		const char *arg = argv[i];
		if (!strcmp(arg, "-dev") || !strcmp(arg, "--dev")) {
			a->dev = true;
			continue;
		}
		if (!strcmp(arg, "-h") || !strcmp(arg, "-help") || !strcmp(arg, "--help")) {
			usage(stdout);
			exit(0);
		}
		if ((v = flag_value(argc, argv, &i, "config", &m)), m) {
			if (!v || a->nconfigs >= MAX_CONFIGS)
				goto bad;
			a->configs[a->nconfigs++] = (char *)v;
		} else if ((v = flag_value(argc, argv, &i, "dev-root-token-id", &m)), m) {
			a->dev_root_token_id = v;
		} else if ((v = flag_value(argc, argv, &i, "dev-listen-address", &m)), m) {
			a->dev_listen_address = v;
		} else if ((v = flag_value(argc, argv, &i, "log-level", &m)), m) {
			a->log_level = v;
		} else if ((v = flag_value(argc, argv, &i, "log-format", &m)), m) {
			a->log_format = v;
		} else {
			fprintf(stderr, "flag provided but not defined: %s\n", arg);
			usage(stderr);
			return -1;
		}
		continue;
bad:
		fprintf(stderr, "invalid value for %s\n", arg);
		return -1;
	}
	if (!a->dev && a->nconfigs == 0) {
		fprintf(stderr, "Error: must specify at least one config path using -config\n");
		return -1;
	}
	if (a->dev && !a->dev_root_token_id)
		a->dev_root_token_id = getenv("VAULT_DEV_ROOT_TOKEN_ID");
	if (a->dev && !a->dev_listen_address)
		a->dev_listen_address = getenv("VAULT_DEV_LISTEN_ADDRESS");
	return 0;
}

static void apply_logging(const struct server_config *cfg, const struct server_args *a)
{
	const char *lvl = a->log_level ? a->log_level : cfg->log_level;
	if (!lvl)
		lvl = getenv("VAULT_LOG_LEVEL");
	int l = log_level_parse(lvl ? lvl : "info");
	log_set_level(l < 0 ? LOG_INFO : (enum log_level)l);
	const char *fmt = a->log_format ? a->log_format : cfg->log_format;
	log_set_json(fmt && !strcmp(fmt, "json"));
	/* Vault rotates log_file every 24h unless log_rotate_duration says otherwise */
	log_set_rotation(cfg->log_rotate_bytes, cfg->log_rotate_max_files,
			 cfg->log_rotate_duration ? cfg->log_rotate_duration : 24 * 3600);
}

/* telemetry { }: what sys/metrics renders (the registry counts regardless) */
static void apply_telemetry(const struct server_config *cfg)
{
	struct metrics_config mc = {
		.prometheus_retention_s = cfg->telemetry.prometheus_retention_time,
		.disable_hostname = cfg->telemetry.disable_hostname,
		.enable_hostname_label = cfg->telemetry.enable_hostname_label,
		.prefix = cfg->telemetry.metrics_prefix,
		.usage_gauge_period_s = cfg->telemetry.usage_gauge_period,
	};
	metrics_configure(&mc);
}

/* telemetry { statsd_address, dogstatsd_addr, dogstatsd_tags }: the push
 * sinks, at start-up only (as Vault, a SIGHUP does not change them) */
static int start_telemetry_sinks(const struct server_config *cfg, struct verr *err)
{
	const char *tags[33] = {0};
	json_t *jt = json_object_get(cfg->telemetry.options, "dogstatsd_tags");
	size_t n = 0;
	for (; n < json_array_size(jt) && n < 32; n++)
		tags[n] = json_string_value(json_array_get(jt, n));
	if (json_array_size(jt) > 32)
		return verr_set(err, VERR_INVALID, "telemetry: dogstatsd_tags: at most 32 tags");
	struct metrics_sink_config sc = {
		.statsd_address = cfg->telemetry.statsd_address,
		.dogstatsd_addr = cfg->telemetry.dogstatsd_addr,
		.dogstatsd_tags = tags,
	};
	return metrics_sinks_start(&sc, err);
}

/* VAULT_API_ADDR / VAULT_CLUSTER_ADDR override api_addr / cluster_addr, as
 * in Vault: one ConfigMap serves every pod of a StatefulSet, each pod
 * setting its own addresses in its environment (deploy/kubernetes). */
static int apply_addr_env(struct server_config *cfg)
{
	const char *api = getenv("VAULT_API_ADDR"), *cl = getenv("VAULT_CLUSTER_ADDR");
	if (api && *api) {
		free(cfg->api_addr);
		if (!(cfg->api_addr = strdup(api)))
			return -1;
	}
	if (cl && *cl) {
		free(cfg->cluster_addr);
		if (!(cfg->cluster_addr = strdup(cl)))
			return -1;
	}
	return 0;
}

/* Vault's pid_file: the process ID, written once the listeners are up and
 * removed at a clean shutdown. */
static int write_pid_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
	int rc = write(fd, buf, (size_t)n) == n ? 0 : -EIO;
	if (close(fd) && rc == 0)
		rc = -errno;
	return rc;
}

/* The seal of the configuration: the enabled stanza (a disabled one is the
 * old seal of a migration), else Shamir; *old: the disabled stanza's seal
 * (NULL: none). */
static const struct config_stanza *seal_stanza(const struct server_config *cfg, bool disabled)
{
	for (size_t i = 0; i < cfg->nseals; i++)
		if (cfg->seals[i].disabled == disabled)
			return &cfg->seals[i];
	return NULL;
}

/* Multi-seal: several enabled stanzas, or one with a name or priority
 * (Vault's "Seal HA" shape). */
static bool multi_seal(const struct server_config *cfg)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->nseals; i++)
		if (!cfg->seals[i].disabled) {
			n++;
			if (json_object_get(cfg->seals[i].options, "name") ||
			    json_object_get(cfg->seals[i].options, "priority"))
				return true;
		}
	return n > 1;
}

static const char *stanza_name(const struct config_stanza *st)
{
	const char *n = json_string_value(json_object_get(st->options, "name"));
	return n ? n : st->type;
}

static int stanza_priority(const struct config_stanza *st, int def, int *out, struct verr *err)
{
	const json_t *v = json_object_get(st->options, "priority");
	long p = def;
	if (json_is_integer(v)) {
		p = (long)json_integer_value(v);
	} else if (json_is_string(v)) {
		char *end = NULL;
		p = strtol(json_string_value(v), &end, 10);
		if (!*json_string_value(v) || *end)
			p = 0;
	} else if (v) {
		p = 0;
	}
	if (p < 1 || p > 1000)
		return verr_set(err, VERR_INVALID, "%s:%d: seal \"%s\": priority must be an integer from 1 to 1000",
				st->file, st->line, st->type);
	*out = (int)p;
	return 0;
}

/* One stanza of a multi-seal, checked: its name and priority. */
static int multi_stanza(const struct config_stanza *st, const char **name, int *prio,
			struct verr *err)
{
	if (st->disabled)
		return verr_set(err, VERR_INVALID, "%s:%d: a seal migration with several seals is not supported",
				st->file, st->line);
	const json_t *nv = json_object_get(st->options, "name");
	*name = stanza_name(st);
	size_t nl = strlen(*name);
	bool ok = nl >= 1 && nl <= SEAL_MULTI_NAME_MAX && (!nv || json_is_string(nv));
	for (size_t k = 0; ok && k < nl; k++)
		ok = isalnum((unsigned char)(*name)[k]) || strchr("-_.", (*name)[k]);
	if (!ok)
		return verr_set(err, VERR_INVALID,
				"%s:%d: seal \"%s\": name must be 1 to %d letters, digits, '-', '_' or '.'",
				st->file, st->line, st->type, SEAL_MULTI_NAME_MAX);
	int rc = stanza_priority(st, 1, prio, err);
	if (rc)
		return rc;
	seal_new_fn fn = registry_seal(st->type);
	if (!fn || !strcmp(st->type, "shamir"))
		return verr_set(err, VERR_INVALID, "%s:%d: seal \"%s\": %s", st->file, st->line, st->type,
				fn ? "a multi-seal takes auto seals only" : "seal type is not supported");
	return 0;
}

/* A new member from its (checked) stanza. */
static int open_member(struct seal **out, const struct config_stanza *st, const char *name,
		       struct verr *err)
{
	struct verr e2 = {0};
	int rc = registry_seal(st->type)(out, st->options, &e2);
	return rc ? verr_set(err, rc, "seal \"%s\" (%s): %s", name, st->type, e2.msg) : 0;
}

static int make_multi_seal(struct seal **out, const struct server_config *cfg, struct verr *err)
{
	struct seal *members[SEAL_MULTI_MAX] = {0};
	const char *names[SEAL_MULTI_MAX] = {0};
	int prio[SEAL_MULTI_MAX] = {0};
	size_t n = 0;
	int rc = 0;
	if (cfg->nseals > SEAL_MULTI_MAX)
		return verr_set(err, VERR_INVALID, "a multi-seal takes 1 to %d seals", SEAL_MULTI_MAX);
	size_t opened = 0;
	struct verr why = {0};
	for (size_t i = 0; i < cfg->nseals && !rc; i++)
		rc = multi_stanza(&cfg->seals[i], &names[i], &prio[i], err);
	for (size_t i = 0; i < cfg->nseals && !rc; i++, n++) {
		const struct config_stanza *st = &cfg->seals[i];
		verr_clear(&why);
		if (open_member(&members[n], st, names[n], &why) == 0) {
			opened++;
			continue;
		}
		/* one member that cannot be opened does not stop the others
		 * (that is what several seals are for); all of them does */
		log_error("core", "multi-seal: %s; the other seals unseal without it", why.msg);
		rc = seal_unavailable_new(&members[n], st->type, &why, err);
	}
	if (!rc && !opened)
		rc = verr_set(err, why.code ? why.code : VERR_INVALID, "%s", why.msg);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			seal_close(members[i]);
		return rc;
	}
	return seal_multi_new(out, members, names, prio, n, err);
}

/*
 * SIGHUP: each seal re-reads its token or credentials; a multi-seal's set
 * follows its stanzas (matched by name: a running member whose stanza is
 * still there stays, with its priority as it now reads; a new name is a
 * new seal, wrapped before it joins; a missing one is removed). Any refusal
 * is logged and the running seals stay as they are.
 */
static void reload_seals(struct core *core, struct seal *seal, const struct server_config *ncfg)
{
	struct verr e = {0};
	if (!seal_multi_count(seal)) {
		const struct config_stanza *sst = seal_stanza(ncfg, false);
		if (sst && !strcmp(sst->type, seal_type(seal)) && seal_reload(seal, sst->options, &e))
			log_error("core", "seal reload failed: %s", e.msg);
		if (multi_seal(ncfg) && seal_recovery_keys(seal))
			log_error("core", "seal reload: the running %s seal is a single seal: adding seals to it "
					  "takes effect at a restart (give it a name or priority to make it a multi-seal); "
					  "the seals are unchanged", seal_type(seal));
		return;
	}
	/* each member its own stanza, by name */
	json_t *by = json_object();
	for (size_t i = 0; i < ncfg->nseals; i++)
		json_object_set(by, stanza_name(&ncfg->seals[i]), ncfg->seals[i].options);
	if (seal_reload(seal, by, &e))
		log_error("core", "seal reload failed: %s", e.msg);
	json_decref(by);
	verr_clear(&e);
	if (!ncfg->nseals || !multi_seal(ncfg)) {
		log_error("core", "seal reload refused: %s; the seals are unchanged",
			  ncfg->nseals ? "a single seal without name or priority in place of the multi-seal is a seal migration"
				       : "removing every seal is a seal migration");
		return;
	}
	if (ncfg->nseals > SEAL_MULTI_MAX) {
		log_error("core", "seal reload refused: a multi-seal takes 1 to %d seals; the seals are unchanged",
			  SEAL_MULTI_MAX);
		return;
	}
	struct seal *members[SEAL_MULTI_MAX] = {0};
	bool opened[SEAL_MULTI_MAX] = {0};
	const char *names[SEAL_MULTI_MAX] = {0};
	int prio[SEAL_MULTI_MAX] = {0};
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < ncfg->nseals && !rc; i++) {
		const struct config_stanza *st = &ncfg->seals[i];
		if ((rc = multi_stanza(st, &names[n], &prio[n], &e)) != 0)
			break;
		/* this thread is the only one that changes the set */
		for (size_t j = 0; j < seal_multi_count(seal) && !members[n]; j++) {
			const char *nm = NULL;
			struct seal *m = seal_multi_member(seal, j, &nm);
			if (strcmp(nm, names[n]))
				continue;
			if (strcmp(seal_type(m), st->type)) {
				rc = verr_set(&e, VERR_INVALID,
					      "%s:%d: seal \"%s\" was a %s seal and is now %s: give the new seal a new name",
					      st->file, st->line, names[n], seal_type(m), st->type);
				break;
			}
			members[n] = m;
		}
		if (!rc && !members[n] && (rc = open_member(&members[n], st, names[n], &e)) == 0)
			opened[n] = true;
		if (!rc)
			n++;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (opened[i])
				seal_close(members[i]);
		log_error("core", "seal reload refused: %s; the seals are unchanged", e.msg);
		return;
	}
	if (core_seals_change(core, members, names, prio, n, &e))
		log_error("core", "seal reload refused: %s", e.msg);
}

static int make_seal(struct seal **out, struct seal **old, const struct server_config *cfg,
		     struct verr *err)
{
	*old = NULL;
	if (multi_seal(cfg))
		return make_multi_seal(out, cfg, err);
	const struct config_stanza *st = seal_stanza(cfg, false), *ost = seal_stanza(cfg, true);
	const char *type = st ? st->type : "shamir";
	seal_new_fn fn = registry_seal(type);
	if (!fn)
		return verr_set(err, VERR_INVALID, "seal type \"%s\" is not supported", type);
	int rc = fn(out, st ? st->options : NULL, err);
	if (rc || !ost)
		return rc;
	if (!strcmp(ost->type, type))
		return verr_set(err, VERR_INVALID, "a seal migration needs two different seal types (both are \"%s\")", type);
	rc = registry_seal(ost->type)(old, ost->options, err);
	if (rc) {
		seal_close(*out);
		*out = NULL;
	}
	return rc;
}

int server_main(int argc, char **argv)
{
	struct server_args a = {0};
	if (parse_args(&a, argc, argv))
		return 1;

	struct verr err = {0};
	struct server_config *cfg = NULL;
	int rc = a.dev ? config_dev(&cfg, a.dev_listen_address, &err)
		       : config_load(&cfg, a.configs, a.nconfigs, &err);
	if (rc) {
		fprintf(stderr, "Error loading configuration: %s\n", err.msg);
		return 1;
	}
	apply_logging(cfg, &a);
	apply_telemetry(cfg);
	if (start_telemetry_sinks(cfg, &err)) {
		fprintf(stderr, "Error initializing telemetry: %s\n", err.msg);
		config_free(cfg);
		return 1;
	}
	if (apply_addr_env(cfg)) {
		fprintf(stderr, "Error: out of memory\n");
		config_free(cfg);
		return 1;
	}
	if (a.log_level && log_level_parse(a.log_level) < 0) {
		fprintf(stderr, "Error: unknown log level \"%s\"\n", a.log_level);
		config_free(cfg);
		return 1;
	}
	if (cfg->log_file && (rc = log_set_file(cfg->log_file)) < 0) {
		fprintf(stderr, "Error opening log_file %s: %s\n", cfg->log_file, strerror(-rc));
		config_free(cfg);
		return 1;
	}

	physical_new_fn pnew = registry_physical(cfg->storage->type);
	if (!pnew) {
		fprintf(stderr, "Error: storage type \"%s\" is not supported\n", cfg->storage->type);
		config_free(cfg);
		return 1;
	}
	if (cfg->ha_storage && !registry_physical(cfg->ha_storage->type)) {
		fprintf(stderr, "Error: ha_storage type \"%s\" is not supported\n", cfg->ha_storage->type);
		config_free(cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg->nseals; i++)
		if (!registry_seal(cfg->seals[i].type)) {
			fprintf(stderr, "Error: seal type \"%s\" is not supported\n", cfg->seals[i].type);
			config_free(cfg);
			return 1;
		}

	/* no core dumps of a process holding keys, unless explicitly allowed */
	const char *dumps = getenv("COFFER_ENABLE_CORE_DUMPS");
	if (!dumps || strcmp(dumps, "1") != 0) {
		prctl(PR_SET_DUMPABLE, 0);
		struct rlimit rl = {0, 0};
		setrlimit(RLIMIT_CORE, &rl);
	}
	secmem_set_mlock(!cfg->disable_mlock);

	/* signals: block in every thread, handled by sigwait below */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct physical *phys = NULL, *ha_phys = NULL;
	struct seal *seal = NULL, *old_seal = NULL;
	struct core_autounseal *autounseal = NULL;
	/* raft listens on the top-level cluster_addr (Vault's contract) */
	if (!strcmp(cfg->storage->type, "raft") && cfg->cluster_addr &&
	    !json_object_get(cfg->storage->options, "cluster_addr"))
		json_object_set_new(cfg->storage->options, "cluster_addr",
				    json_string(cfg->cluster_addr));
	/* etcd's lock holder keeps a read cache: Vault's top-level keys for it */
	if (!strcmp(cfg->storage->type, "etcd")) {
		if (cfg->disable_cache)
			json_object_set_new(cfg->storage->options, "disable_cache", json_string("true"));
		if (cfg->cache_size > 0) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)cfg->cache_size);
			json_object_set_new(cfg->storage->options, "cache_size", json_string(n));
		}
	}
	rc = pnew(&phys, cfg->storage->options, &err);
	if (rc) {
		fprintf(stderr, "Error initializing storage of type %s: %s\n", cfg->storage->type, err.msg);
		config_free(cfg);
		return 1;
	}
	/* HA: from ha_storage when given (data and lock from different
	 * backends), else from the storage backend itself (NULL: one node) */
	if (cfg->ha_storage) {
		rc = registry_physical(cfg->ha_storage->type)(&ha_phys, cfg->ha_storage->options, &err);
		if (rc) {
			fprintf(stderr, "Error initializing ha_storage of type %s: %s\n",
				cfg->ha_storage->type, err.msg);
			physical_close(phys);
			config_free(cfg);
			return 1;
		}
	}
	struct physical_ha *ha = physical_ha(ha_phys ? ha_phys : phys);
	if (ha_phys && !ha) {
		fprintf(stderr, "Error: ha_storage type \"%s\" has no HA lock (set ha_enabled)\n",
			cfg->ha_storage->type);
		physical_close(ha_phys);
		physical_close(phys);
		config_free(cfg);
		return 1;
	}
	rc = make_seal(&seal, &old_seal, cfg, &err);
	if (rc) {
		fprintf(stderr, "Error configuring the seal: %s\n", err.msg);
		physical_close(ha_phys);
		physical_close(phys);
		config_free(cfg);
		return 1;
	}
	struct core_opts co = {
		.phys = phys,
		.ha = ha,
		.seal = seal,
		.old_seal = old_seal,
		.default_lease_ttl = cfg->default_lease_ttl,
		.max_lease_ttl = cfg->max_lease_ttl,
		.backends = registry_backends(),
		.audit_types = registry_audit_types(),
		.storage_type = cfg->storage->type,
		.api_addr = cfg->api_addr,
		.cluster_addr = cfg->cluster_addr,
		.cluster_name = cfg->cluster_name,
		.allow_audit_log_prefixing = cfg->allow_audit_log_prefixing,
		.periodic_interval_ms = (int)(cfg->periodic_interval * 1000),
	};
	struct core *core = NULL;
	rc = core_new(&core, &co, &err);
	if (rc) {
		fprintf(stderr, "Error creating core: %s\n", err.msg);
		seal_close(seal);
		seal_close(old_seal);
		physical_close(ha_phys);
		physical_close(phys);
		config_free(cfg);
		return 1;
	}

	/* dev mode: initialise and unseal before any listener accepts, so
	 * the first request already sees the root token */
	char *dev_root = NULL, *dev_key = NULL;
	if (a.dev) {
		rc = core_dev_setup(core, a.dev_root_token_id, &dev_root, &dev_key, &err);
		if (rc) {
			fprintf(stderr, "Error initializing dev mode: %s\n", err.msg);
			core_free(core);
			physical_close(ha_phys);
			config_free(cfg);
			return 1;
		}
	}

	/* auto seals unseal now, in the background, retrying while the key
	 * service is down; the listeners already answer seal-status meanwhile */
	if (!a.dev && (rc = core_autounseal_start(&autounseal, core, &err)) != 0)
		log_error("core", "auto-unseal: %s", err.msg);

	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	struct http_listener **ls = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*ls));
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		struct http_listener_opts o = {
			.address = l->address,
			.tls_disable = l->tls_disable,
			.tls_cert_file = l->tls_cert_file,
			.tls_key_file = l->tls_key_file,
			.tls_client_ca_file = l->tls_client_ca_file,
			.tls_min_version = l->tls_min_version == CONFIG_TLS13 ? "tls13" : "tls12",
			.tls_require_client_cert = l->tls_require_and_verify_client_cert,
			.max_request_size = config_listener_max_request_size(l),
			.max_request_duration = l->max_request_duration ? l->max_request_duration
									 : cfg->default_max_request_duration,
			.unauthenticated_metrics_access = l->unauthenticated_metrics_access,
			.spool_dir = !strcmp(cfg->storage->type, "raft")
					     ? json_string_value(
						       json_object_get(cfg->storage->options, "path"))
					     : NULL,
			.idle_timeout = (unsigned)l->http_idle_timeout,
			.read_header_timeout = (unsigned)l->http_read_header_timeout,
			.read_timeout = (unsigned)l->http_read_timeout,
			.connection_limit = (unsigned)l->max_connections,
			.connection_limit_per_ip = (unsigned)l->max_connections_per_ip,
			.thread_pool_size = (unsigned)l->thread_pool_size,
			.inline_ok = core_request_inline,
		};
		rc = http_listener_start(&ls[i], &o, core, &err);
		if (rc) {
			fprintf(stderr, "Error initializing listener of type tcp: %s\n", err.msg);
			for (size_t j = 0; j < i; j++)
				http_listener_stop(ls[j]);
			free(ls);
			core_autounseal_stop(autounseal);
			core_free(core);
			seal_close(old_seal);
			physical_close(ha_phys);
			config_free(cfg);
			return 1;
		}
	}

	/* the cluster port: standbys forward requests to the active node here
	 * (mutual TLS with the cluster certificate, which exists once unsealed) */
	struct http_listener *cluster_l = NULL;
	struct http_echo *echo = NULL;
	if (ha && cfg->cluster_addr && *cfg->cluster_addr) {
		const char *ca = cfg->cluster_addr;
		if (!strncmp(ca, "https://", 8))
			ca += 8;
		else if (!strncmp(ca, "http://", 7))
			ca += 7;
		char caddr[300];
		snprintf(caddr, sizeof(caddr), "%s", ca);
		size_t cl = strlen(caddr);
		while (cl && caddr[cl - 1] == '/')
			caddr[--cl] = '\0';
		struct http_listener_opts o = {.address = caddr, .cluster = true};
		rc = http_listener_start(&cluster_l, &o, core, &err);
		if (!rc)
			rc = http_cluster_echo_start(&echo, core, &err);
		if (rc) {
			fprintf(stderr, "Error initializing the cluster listener on %s: %s\n", caddr,
				err.msg);
			http_listener_stop(cluster_l);
			for (size_t j = 0; j < cfg->nlisteners; j++)
				http_listener_stop(ls[j]);
			free(ls);
			core_autounseal_stop(autounseal);
			core_free(core);
			seal_close(old_seal);
			physical_close(ha_phys);
			config_free(cfg);
			return 1;
		}
	}

	/* banner */
	printf("==> Coffer server configuration:\n\n");
	printf("%24s: %s\n", "Api Address", cfg->api_addr ? cfg->api_addr : "");
	printf("%24s: %s\n", "Cluster Address", cfg->cluster_addr ? cfg->cluster_addr : "");
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		char label[32];
		snprintf(label, sizeof(label), "Listener %zu", i + 1);
		printf("%24s: tcp (addr: \"%s\", max_request_size: \"%lld\", tls: \"%s\")\n", label,
		       http_listener_address(ls[i]),
		       (long long)config_listener_max_request_size(&cfg->listeners[i]),
		       cfg->listeners[i].tls_disable ? "disabled" : "enabled");
	}
	const char *lvl_names[] = {"trace", "debug", "info", "warn", "error", "off"};
	printf("%24s: %s\n", "Log Level", lvl_names[log_get_level()]);
	printf("%24s: supported: true, enabled: %s\n", "Mlock", cfg->disable_mlock ? "false" : "true");
	printf("%24s: %s\n", "Storage", cfg->storage->type);
	printf("%24s: Coffer v%s\n", "Version", COFFER_VERSION);
	printf("\n");

	if (a.dev) {
		printf("WARNING! dev mode is enabled! In this mode, Coffer runs entirely in-memory\n"
		       "and starts unsealed with a single unseal key. The root token is already\n"
		       "authenticated to the CLI, so you can immediately begin using Coffer.\n\n"
		       "You may need to set the following environment variables:\n\n"
		       "    $ export VAULT_ADDR='http://%s'\n\n"
		       "The unseal key and root token are displayed below in case you want to\n"
		       "seal/unseal the Vault or re-authenticate.\n\n"
		       "Unseal Key: %s\nRoot Token: %s\n\n"
		       "Development mode should NOT be used in production installations!\n\n",
		       cfg->nlisteners ? http_listener_address(ls[0]) : "", dev_key, dev_root);
		secmem_wipe(dev_key, strlen(dev_key));
		secmem_wipe(dev_root, strlen(dev_root));
		free(dev_key);
		free(dev_root);
	}
	if (cfg->pid_file && (rc = write_pid_file(cfg->pid_file)) < 0)
		log_error("core", "could not write pid_file %s: %s", cfg->pid_file, strerror(-rc));
	if (!a.dev && sys_raft_retry_join_start(core, cfg->storage->options, &err)) {
		fprintf(stderr, "Error: %s\n", err.msg);
		http_cluster_echo_stop(echo);
		http_listener_stop(cluster_l);
		for (size_t i = 0; i < cfg->nlisteners; i++)
			http_listener_stop(ls[i]);
		free(ls);
		core_free(core);
		physical_close(ha_phys);
		config_free(cfg);
		return 1;
	}
	printf("==> Coffer server started! Log data will stream in below:\n\n");
	fflush(stdout);
	log_info("core", "listening; storage=%s", cfg->storage->type);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* first, so this line already lands in a rotated file */
			int lr = log_reopen();
			log_info("core", "SIGHUP received: reloading");
			if (lr < 0)
				log_error("core", "log_file reopen failed: %s", strerror(-lr));
			struct server_config *ncfg = NULL;
			struct verr e2 = {0};
			if (!a.dev && config_load(&ncfg, a.configs, a.nconfigs, &e2) == 0) {
				apply_logging(ncfg, &a);
				reload_seals(core, seal, ncfg);
				apply_telemetry(ncfg);
				/* a new log_file path takes effect at reload */
				if (ncfg->log_file && (!cfg->log_file || strcmp(ncfg->log_file, cfg->log_file)) &&
				    (lr = log_set_file(ncfg->log_file)) < 0)
					log_error("core", "log_file %s: %s", ncfg->log_file, strerror(-lr));
				config_free(ncfg);
			} else if (!a.dev) {
				log_error("core", "reload failed: %s", e2.msg);
			}
			for (size_t i = 0; i < cfg->nlisteners; i++)
				if (!cfg->listeners[i].tls_disable && http_listener_reload_tls(ls[i], &e2))
					log_error("core", "TLS reload failed: %s", e2.msg);
			core_reload(core);
			continue;
		}
		log_info("core", "shutdown signal received (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++)
		http_listener_stop(ls[i]);
	free(ls);
	http_cluster_echo_stop(echo);
	http_listener_stop(cluster_l);
	core_autounseal_stop(autounseal);
	sys_raft_stop(); /* join threads end before the core goes */
	metrics_sinks_stop(); /* its collectors read the core */
	core_seal(core);
	core_free(core);
	seal_close(old_seal);
	physical_close(ha_phys);
	if (cfg->pid_file)
		unlink(cfg->pid_file);
	log_info("core", "shutdown complete");
	config_free(cfg);
	log_set_file(NULL);
	return 0;
}
