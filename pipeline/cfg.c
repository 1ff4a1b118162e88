/* cfg.c — configuration from DP_* environment variables, described by option tables.
 *
 * Owns pl_cfg_common (the options every binary has) and the loaded pl_cfg_t: a copy of every
 * option's name and parsed value plus the DP_KAFKA_PROP_* pass-through list. Loading checks
 * everything and collects every problem before printing them, so one run shows all mistakes. An
 * empty value (DP_X=) counts as unset, so compose files can blank a setting to get its default.
 * DP_TEST_* and DP_STACK_* belong to scripts and are ignored. A secret option DP_X may instead be
 * given as DP_X_FILE=<path> (a mounted secret): the file's content, trailing newlines removed. A
 * name in two tables, a default that fails its own rules, and a getter for an unknown name are
 * programming errors: they abort. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

#define DP_VERSION "dronepipe 0.1.0"

extern char **environ;

const pl_cfg_opt_t pl_cfg_common[] = {
    {"DP_KAFKA_BROKERS", PL_CFG_STR, "127.0.0.1:9092", 1, 4096, false, false, NULL,
     "Kafka bootstrap servers, comma-separated host:port"},
    {"DP_LOG_LEVEL", PL_CFG_ENUM, "info", 0, 0, false, false, "debug|info|warn|error",
     "minimum level of log lines written"},
    {"DP_HTTP_ADDR", PL_CFG_STR, "127.0.0.1", 1, 255, false, false, NULL,
     "address the HTTP server (health, metrics, API) listens on"},
    {"DP_HTTP_THREADS", PL_CFG_INT, "2", 1, 64, false, false, NULL, "HTTP worker threads"},
    {"DP_HTTP_MAX_BODY", PL_CFG_INT, "65536", 1024, 16777216, false, false, NULL,
     "largest accepted HTTP request body in bytes; a larger Content-Length is answered 413 "
     "at once and the connection closed without reading the body"},
    {"DP_HTTP_MAX_CONN_PER_IP", PL_CFG_INT, "1024", 1, 100000, false, false, NULL,
     "open HTTP connections one client address may hold; more are closed at accept (behind "
     "a proxy every client has the proxy's address)"},
    {"DP_HTTP_MAX_STREAMS_PER_IP", PL_CFG_INT, "32", 1, 100000, false, false, NULL,
     "streaming responses (live tracking) one client address may hold open; more get 429"},
    {"DP_HTTP_REQUEST_TIMEOUT_MS", PL_CFG_INT, "10000", 100, 3600000, false, false, NULL,
     "deadline of a whole HTTP request, from its connection (or, kept alive, from the end of "
     "the previous request) until its answer was sent; past it the connection is closed. A "
     "stream is exempt once its headers were sent"},
    {"DP_TLS_CERT_FILE", PL_CFG_STR, NULL, 0, 4096, false, false, NULL,
     "PEM certificate file; with DP_TLS_KEY_FILE enables HTTPS"},
    {"DP_TLS_KEY_FILE", PL_CFG_STR, NULL, 0, 4096, false, false, NULL,
     "PEM private key file (a path, not the key itself)"},
    {"DP_SHUTDOWN_TIMEOUT_MS", PL_CFG_INT, "10000", 0, 600000, false, false, NULL,
     "how long shutdown may take to flush and commit, in milliseconds; past it (or on a "
     "second signal) a consumer service exits with status 2 and its uncommitted records "
     "come again after the restart"},
    {"DP_PARTITIONS", PL_CFG_INT, "6", 1, 1024, false, false, NULL,
     "partition count the topics were created with"},
    {"DP_KAFKA_SASL_PASSWORD", PL_CFG_STR, NULL, 0, 4096, false, true, NULL,
     "SASL password for Kafka (sasl.password); mount it and use DP_KAFKA_SASL_PASSWORD_FILE"},
    {NULL},
};

/* One option's parsed value. */
typedef struct entry {
	char *name;
	pl_cfg_type_t type;
	char *text;  /* as given, or the default; NULL when unset without default */
	int64_t num; /* PL_CFG_INT */
	bool flag;   /* PL_CFG_BOOL */
} entry_t;

struct pl_cfg {
	entry_t *entries;
	size_t nentries;
	char **prop_keys; /* "linger.ms" */
	char **prop_values;
	size_t nprops;
};

/* Collected error lines. */
typedef struct errs {
	char **lines;
	size_t n;
} errs_t;

static void errs_add(errs_t *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errs_add(errs_t *errs, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *line = pl_malloc((size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(line, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	errs->lines = pl_realloc(errs->lines, (errs->n + 1) * sizeof(*errs->lines));
	errs->lines[errs->n++] = line;
}

static void errs_free(errs_t *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		pl_free(errs->lines[i]);
	pl_free(errs->lines);
}

/* A value as it may appear in an error line: secrets masked, unprintable bytes as '?', long values
 * shortened. Writes into out (at least 80 bytes). */
static const char *shown(const char *value, bool secret, char *out, size_t size)
{
	if (secret) {
		snprintf(out, size, "***");
		return out;
	}
	size_t i = 0, max = size - 4;
	for (; value[i] && i < max; i++)
		out[i] = isprint((unsigned char)value[i]) ? value[i] : '?';
	if (value[i])
		memcpy(out + i, "...", 3), i += 3;
	out[i] = '\0';
	return out;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, true;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

static bool enum_has(const char *choices, const char *s)
{
	size_t n = strlen(s);
	for (const char *p = choices; p && *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

static bool int_bounded(const pl_cfg_opt_t *opt)
{
	return opt->min != 0 || opt->max != 0;
}

/* Parses text for opt into e. Returns false and adds an error line when it is not acceptable. */
static bool parse_value(const pl_cfg_opt_t *opt, const char *text, entry_t *e, errs_t *errs)
{
	char show[96];
	const char *v = shown(text, opt->secret, show, sizeof(show));
	switch (opt->type) {
	case PL_CFG_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(text, &end, 10);
		if (!isdigit((unsigned char)text[0]) &&
		    !((text[0] == '-' || text[0] == '+') && isdigit((unsigned char)text[1]))) {
			errs_add(errs, "%s: '%s' is not an integer", opt->name, v);
			return false;
		}
		if (*end != '\0') {
			errs_add(errs, "%s: '%s' is not an integer", opt->name, v);
			return false;
		}
		if (errno == ERANGE) {
			errs_add(errs, "%s: '%s' is out of the 64-bit integer range", opt->name, v);
			return false;
		}
		if (int_bounded(opt) && n < opt->min) {
			errs_add(errs, "%s: %s is below the minimum %lld", opt->name, v,
			         (long long)opt->min);
			return false;
		}
		if (int_bounded(opt) && n > opt->max) {
			errs_add(errs, "%s: %s is above the maximum %lld", opt->name, v,
			         (long long)opt->max);
			return false;
		}
		e->num = n;
		return true;
	}
	case PL_CFG_BOOL:
		if (!parse_bool(text, &e->flag)) {
			errs_add(errs, "%s: '%s' is not a boolean (true|false|1|0|yes|no|on|off)",
			         opt->name, v);
			return false;
		}
		return true;
	case PL_CFG_ENUM:
		if (!enum_has(opt->choices, text)) {
			errs_add(errs, "%s: '%s' is not one of %s", opt->name, v,
			         opt->choices ? opt->choices : "(no choices)");
			return false;
		}
		return true;
	case PL_CFG_STR: {
		long long len = (long long)strlen(text);
		if (int_bounded(opt) && len < opt->min) {
			errs_add(errs, "%s: %lld characters is below the minimum length %lld",
			         opt->name, len, (long long)opt->min);
			return false;
		}
		if (int_bounded(opt) && len > opt->max) {
			errs_add(errs, "%s: %lld characters is above the maximum length %lld",
			         opt->name, len, (long long)opt->max);
			return false;
		}
		return true;
	}
	}
	errs_add(errs, "%s: option has an unknown type", opt->name);
	return false;
}

/* Restricted Damerau-Levenshtein distance (a transposition counts as one edit). / */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

static const pl_cfg_opt_t *find_opt(const pl_cfg_opt_t *const *tables, const char *name, size_t len)
{
	for (size_t t = 0; tables && tables[t]; t++)
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++)
			if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
				return o;
	return NULL;
}

static void unknown_var(const pl_cfg_opt_t *const *tables, const char *name, errs_t *errs)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t t = 0; tables && tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++) {
			size_t d = edit_distance(name, o->name);
			if (d < best_d)
				best_d = d, best = o->name;
		}
	}
	/* One environment is often shared by several binaries (compose env files, ConfigMaps, the
	 * stack script), so a DP_ name that is not ours is another binary's: ignore it. A name
	 * within a few edits of one of ours is a typo, and a silent typo means a silently wrong
	 * setting: that is an error. */
	if (best && best_d <= 2 && best_d * 3 <= strlen(name))
		errs_add(errs, "%s: unknown setting (did you mean %s?)", name, best);
}

/* DP_KAFKA_PROP_<name>: checks the name and adds key/value to cfg. */
static void kafka_prop(pl_cfg_t *cfg, const char *name, size_t name_len, const char *value,
                       errs_t *errs)
{
	size_t plen = strlen(PL_CFG_KAFKA_PROP_PREFIX);
	const char *p = name + plen;
	size_t n = name_len - plen;
	if (n == 0) {
		errs_add(errs, "%.*s: empty property name (use %s<name>, e.g. %slinger_ms)",
		         (int)name_len, name, PL_CFG_KAFKA_PROP_PREFIX, PL_CFG_KAFKA_PROP_PREFIX);
		return;
	}
	char *key = pl_strndup(p, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c == '_')
			key[i] = '.';
		else if (isalnum(c))
			key[i] = (char)tolower(c);
		else
			goto bad;
	}
	if (key[0] == '.' || key[n - 1] == '.' || strstr(key, ".."))
		goto bad;
	cfg->prop_keys = pl_realloc(cfg->prop_keys, (cfg->nprops + 1) * sizeof(char *));
	cfg->prop_values = pl_realloc(cfg->prop_values, (cfg->nprops + 1) * sizeof(char *));
	cfg->prop_keys[cfg->nprops] = key;
	cfg->prop_values[cfg->nprops] = pl_strdup(value);
	cfg->nprops++;
	return;
bad:
	errs_add(errs, "%.*s: '%s' is not a valid property name (letters, digits, single '_')",
	         (int)name_len, name, key);
	pl_free(key);
}

/* Aborts on tables that contradict themselves: a name twice, or a default that fails. */
static void check_tables(const pl_cfg_opt_t *const *tables)
{
	for (size_t t = 0; tables && tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++) {
			for (size_t u = 0; u <= t; u++) {
				for (const pl_cfg_opt_t *p = tables[u]; p->name && p != o; p++) {
					if (strcmp(p->name, o->name) == 0) {
						fprintf(stderr, "pl_cfg: %s is in two tables\n",
						        o->name);
						abort();
					}
				}
			}
			if (o->def) {
				errs_t errs = {0};
				entry_t e = {0};
				if (!parse_value(o, o->def, &e, &errs)) {
					fprintf(stderr, "pl_cfg: bad default: %s\n", errs.lines[0]);
					abort();
				}
			}
		}
	}
}

static const char *type_name(pl_cfg_type_t type)
{
	switch (type) {
	case PL_CFG_STR:
		return "str";
	case PL_CFG_INT:
		return "int";
	case PL_CFG_BOOL:
		return "bool";
	case PL_CFG_ENUM:
		return "enum";
	}
	return "?";
}

/* The bounds column of --help: choices, integer range, length range or "-". */
static const char *bounds_text(const pl_cfg_opt_t *o, char *buf, size_t size)
{
	if (o->type == PL_CFG_ENUM)
		return o->choices ? o->choices : "-";
	if (o->type == PL_CFG_BOOL)
		return "true|false";
	if (!int_bounded(o))
		return "-";
	snprintf(buf, size, "%s%lld..%lld", o->type == PL_CFG_STR ? "length " : "",
	         (long long)o->min, (long long)o->max);
	return buf;
}

static const char *default_text(const pl_cfg_opt_t *o)
{
	return !o->def ? "-" : o->secret ? "***" : o->def;
}

void pl_cfg_print_help(const char *prog, const pl_cfg_opt_t *const *tables, FILE *out)
{
	const char *prop_name = PL_CFG_KAFKA_PROP_PREFIX "<name>";
	int wname = (int)strlen(prop_name), wdef = 1, wbounds = 1;
	char buf[64];
	for (size_t t = 0; tables && tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++) {
			int n = (int)strlen(o->name) + (o->secret ? 5 : 0),
			    d = (int)strlen(default_text(o));
			int b = (int)strlen(bounds_text(o, buf, sizeof(buf)));
			wname = n > wname ? n : wname;
			wdef = d > wdef ? d : wdef;
			wbounds = b > wbounds ? b : wbounds;
		}
	}
	fprintf(out, "usage: %s [--help] [--version]\n", prog ? prog : "dronepipe");
	fprintf(out, "Settings are environment variables (an empty value means unset):\n");
	fprintf(out, "  %-*s  %-4s  %-*s  %-*s  %s\n", wname, "NAME", "TYPE", wdef, "DEFAULT",
	        wbounds, "BOUNDS", "DESCRIPTION");
	for (size_t t = 0; tables && tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++) {
			fprintf(out, "  %-*s  %-4s  %-*s  %-*s  %s%s%s\n", wname, o->name,
			        type_name(o->type), wdef, default_text(o), wbounds,
			        bounds_text(o, buf, sizeof(buf)), o->required ? "(required) " : "",
			        o->secret ? "(secret) " : "", o->help ? o->help : "");
			if (o->secret) {
				char fname[128];
				snprintf(fname, sizeof(fname), "%s_FILE", o->name);
				fprintf(out,
				        "  %-*s  %-4s  %-*s  %-*s  file holding %s (a mounted "
				        "secret)\n",
				        wname, fname, "path", wdef, "-", wbounds, "-", o->name);
			}
		}
	}
	fprintf(out,
	        "  %-*s  %-4s  %-*s  %-*s  any librdkafka property: %slinger_ms=5 sets "
	        "linger.ms=5\n",
	        wname, prop_name, "str", wdef, "-", wbounds, "-", PL_CFG_KAFKA_PROP_PREFIX);
}

static bool ignored_var(const char *name, size_t len)
{
	return (len >= 8 && strncmp(name, "DP_TEST_", 8) == 0) ||
	       (len >= 9 && strncmp(name, "DP_STACK_", 9) == 0);
}

/* The value of name in envp (first occurrence, like getenv), or NULL. */
static const char *env_value(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* DP_X_FILE of a secret option: false (with an error) when it is unusable; *out = the content
 * (trailing newlines removed, caller frees) when given. */
static bool secret_file(const char *name, char **envp, const char *direct, char **out, errs_t *errs)
{
	char fname[128];
	snprintf(fname, sizeof(fname), "%s_FILE", name);
	const char *path = env_value(envp, fname);
	*out = NULL;
	if (!path || !*path)
		return true;
	if (direct) {
		errs_add(errs, "%s: set either %s or %s, not both", fname, name, fname);
		return false;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		errs_add(errs, "%s: cannot read %s: %s", fname, path, strerror(errno));
		return false;
	}
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf), f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	if (more) {
		errs_add(errs, "%s: %s is larger than %zu bytes", fname, path, sizeof(buf));
		return false;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	*out = pl_strndup(buf, n);
	return true;
}

pl_cfg_t *pl_cfg_load(const char *prog, const pl_cfg_opt_t *const *tables, int argc, char **argv,
                      char **envp, FILE *err, int *exit_code)
{
	errs_t errs = {0};
	pl_cfg_t *cfg = NULL;
	int code = 1;

	check_tables(tables);
	if (!envp)
		envp = environ;
	if (!err)
		err = stderr;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			pl_cfg_print_help(prog, tables, stdout);
			code = 0;
			goto out;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s\n", DP_VERSION);
			code = 0;
			goto out;
		}
	}
	for (int i = 1; i < argc; i++)
		errs_add(&errs,
		         "argument '%s': not recognised (settings are DP_* environment "
		         "variables; see --help)",
		         argv[i]);

	cfg = pl_calloc(1, sizeof(*cfg));
	size_t plen = strlen(PL_CFG_KAFKA_PROP_PREFIX);
	for (char **e = envp; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (strncmp(*e, "DP_", 3) != 0 || !eq)
			continue;
		size_t len = (size_t)(eq - *e);
		if (ignored_var(*e, len) || find_opt(tables, *e, len))
			continue;
		if (len > 5 && strncmp(*e + len - 5, "_FILE", 5) == 0) {
			const pl_cfg_opt_t *o = find_opt(tables, *e, len - 5);
			if (o && o->secret)
				continue; /* read with its option below */
		}
		if (len >= plen && strncmp(*e, PL_CFG_KAFKA_PROP_PREFIX, plen) == 0) {
			bool seen = false; /* first occurrence wins, like getenv */
			for (char **f = envp; f < e && !seen; f++)
				seen = strncmp(*f, *e, len + 1) == 0;
			if (!seen)
				kafka_prop(cfg, *e, len, eq + 1, &errs);
			continue;
		}
		char *name = pl_strndup(*e, len);
		unknown_var(tables, name, &errs);
		pl_free(name);
	}

	for (size_t t = 0; tables && tables[t]; t++)
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++)
			cfg->nentries++;
	cfg->entries = pl_calloc(cfg->nentries ? cfg->nentries : 1, sizeof(entry_t));
	size_t k = 0;
	for (size_t t = 0; tables && tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++, k++) {
			entry_t *e = &cfg->entries[k];
			e->name = pl_strdup(o->name);
			e->type = o->type;
			const char *text = env_value(envp, o->name);
			if (text && !*text)
				text = NULL;
			char *from_file = NULL;
			if (o->secret && !secret_file(o->name, envp, text, &from_file, &errs))
				continue;
			if (from_file)
				text = from_file;
			if (!text && o->required) {
				errs_add(&errs, "%s: required but not set", o->name);
				continue;
			}
			if (!text)
				text = o->def;
			if (text && parse_value(o, text, e, &errs))
				e->text = pl_strdup(text);
			pl_free(from_file);
		}
	}
	if (errs.n == 0) {
		code = 0;
		goto out;
	}
	for (size_t i = 0; i < errs.n; i++)
		fprintf(err, "%s\n", errs.lines[i]);
	fflush(err);
	pl_cfg_destroy(cfg);
	cfg = NULL;
out:
	errs_free(&errs);
	if (exit_code)
		*exit_code = code;
	return cfg;
}

void pl_cfg_destroy(pl_cfg_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nentries; i++) {
		pl_free(cfg->entries[i].name);
		pl_free(cfg->entries[i].text);
	}
	pl_free(cfg->entries);
	for (size_t i = 0; i < cfg->nprops; i++) {
		pl_free(cfg->prop_keys[i]);
		pl_free(cfg->prop_values[i]);
	}
	pl_free(cfg->prop_keys);
	pl_free(cfg->prop_values);
	pl_free(cfg);
}

static const entry_t *lookup(const pl_cfg_t *cfg, const char *name, int want_type)
{
	for (size_t i = 0; cfg && name && i < cfg->nentries; i++) {
		const entry_t *e = &cfg->entries[i];
		if (strcmp(e->name, name) != 0)
			continue;
		if (want_type >= 0 && (int)e->type != want_type) {
			fprintf(stderr, "pl_cfg: %s is a %s option\n", name, type_name(e->type));
			abort();
		}
		return e;
	}
	fprintf(stderr, "pl_cfg: no option %s in the tables\n", name ? name : "(null)");
	abort();
}

const char *pl_cfg_str(const pl_cfg_t *cfg, const char *name)
{
	return lookup(cfg, name, -1)->text;
}

int64_t pl_cfg_int(const pl_cfg_t *cfg, const char *name)
{
	return lookup(cfg, name, PL_CFG_INT)->num;
}

bool pl_cfg_bool(const pl_cfg_t *cfg, const char *name)
{
	return lookup(cfg, name, PL_CFG_BOOL)->flag;
}

size_t pl_cfg_kafka_prop_count(const pl_cfg_t *cfg)
{
	return cfg ? cfg->nprops : 0;
}

void pl_cfg_kafka_prop(const pl_cfg_t *cfg, size_t i, const char **key, const char **value)
{
	if (!cfg || i >= cfg->nprops) {
		fprintf(stderr, "pl_cfg: kafka property %zu out of range\n", i);
		abort();
	}
	if (key)
		*key = cfg->prop_keys[i];
	if (value)
		*value = cfg->prop_values[i];
}
