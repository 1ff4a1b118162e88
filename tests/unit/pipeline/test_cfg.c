/* test_cfg.c — unit tests of pipeline/cfg.c: defaults, every error path (each reported, all at
 * once), DP_KAFKA_PROP_* translation, --help/--version, secret masking, programming-error aborts.
 * Every test passes its own envp; the process environment is never read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfg.h"

static const pl_cfg_opt_t svc_opts[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8080", 1, 65535, false, false, NULL, "HTTP port"},
    {"DP_REDIS_URL", PL_CFG_STR, NULL, 0, 0, true, false, NULL, "Redis URL"},
    {"DP_API_TOKEN", PL_CFG_STR, "tok-default-secret", 8, 64, false, true, NULL, "API token"},
    {"DP_PIN", PL_CFG_INT, NULL, 0, 9999, false, true, NULL, "a secret number"},
    {"DP_DRY_RUN", PL_CFG_BOOL, "false", 0, 0, false, false, NULL, "log instead of sending"},
    {"DP_MODE", PL_CFG_ENUM, NULL, 0, 0, false, false, "fast|safe", "delivery mode"},
    {NULL},
};
static const pl_cfg_opt_t *const tables[] = {pl_cfg_common, svc_opts, NULL};

/* Loads with argv {"dronepipe-test", args...}; *errors gets what was printed to err. */
static pl_cfg_t *load_args(char **envp, int argc, char **argv, char **errors, int *code)
{
	size_t size = 0;
	char *text = NULL;
	FILE *err = open_memstream(&text, &size);
	*code = -1;
	pl_cfg_t *cfg = pl_cfg_load("dronepipe-test", tables, argc, argv, envp, err, code);
	fclose(err);
	if (errors)
		*errors = text;
	else
		free(text);
	return cfg;
}

static pl_cfg_t *load(char **envp, char **errors, int *code)
{
	char *argv[] = {"dronepipe-test", NULL};
	return load_args(envp, 1, argv, errors, code);
}

/* Loads env that must fail with exactly the error lines in want (newline-separated). */
static void expect_errors(char **envp, const char *want)
{
	char *errors;
	int code;
	pl_cfg_t *cfg = load(envp, &errors, &code);
	assert_null(cfg);
	assert_int_equal(code, 1);
	assert_string_equal(errors, want);
	free(errors);
}

static void defaults(void **state)
{
	(void)state;
	char *env[] = {"DP_REDIS_URL=redis://127.0.0.1:6379", "PATH=/bin", NULL};
	int code;
	pl_cfg_t *cfg = load(env, NULL, &code);
	assert_non_null(cfg);
	assert_int_equal(code, 0);
	assert_string_equal(pl_cfg_str(cfg, "DP_KAFKA_BROKERS"), "127.0.0.1:9092");
	assert_string_equal(pl_cfg_str(cfg, "DP_LOG_LEVEL"), "info");
	assert_string_equal(pl_cfg_str(cfg, "DP_HTTP_ADDR"), "127.0.0.1");
	assert_int_equal(pl_cfg_int(cfg, "DP_HTTP_THREADS"), 2);
	assert_int_equal(pl_cfg_int(cfg, "DP_HTTP_MAX_BODY"), 65536);
	assert_null(pl_cfg_str(cfg, "DP_TLS_CERT_FILE"));
	assert_null(pl_cfg_str(cfg, "DP_TLS_KEY_FILE"));
	assert_int_equal(pl_cfg_int(cfg, "DP_SHUTDOWN_TIMEOUT_MS"), 10000);
	assert_int_equal(pl_cfg_int(cfg, "DP_PARTITIONS"), 6);
	assert_int_equal(pl_cfg_int(cfg, "DP_HTTP_PORT"), 8080);
	assert_string_equal(pl_cfg_str(cfg, "DP_HTTP_PORT"), "8080");
	assert_string_equal(pl_cfg_str(cfg, "DP_REDIS_URL"), "redis://127.0.0.1:6379");
	assert_string_equal(pl_cfg_str(cfg, "DP_API_TOKEN"), "tok-default-secret");
	assert_null(pl_cfg_str(cfg, "DP_MODE"));
	assert_false(pl_cfg_bool(cfg, "DP_DRY_RUN"));
	assert_int_equal(pl_cfg_kafka_prop_count(cfg), 0);
	pl_cfg_destroy(cfg);
	pl_cfg_destroy(NULL);
}

static void values_override_defaults(void **state)
{
	(void)state;
	char *env[] = {"DP_REDIS_URL=redis://r",
	               "DP_HTTP_PORT=65535",
	               "DP_LOG_LEVEL=debug",
	               "DP_PARTITIONS=1024",
	               "DP_SHUTDOWN_TIMEOUT_MS=0",
	               "DP_MODE=safe",
	               "DP_HTTP_PORT=1", /* a later duplicate loses, as with getenv */
	               "DP_TEST_ANYTHING=x",
	               "DP_STACK_KAFKA_PORT=19092",
	               "DP_API_TOKEN=",
	               "DP_TLS_KEY_FILE=/etc/dp/key.pem",
	               NULL};
	int code;
	pl_cfg_t *cfg = load(env, NULL, &code);
	assert_non_null(cfg);
	assert_int_equal(pl_cfg_int(cfg, "DP_HTTP_PORT"), 65535);
	assert_string_equal(pl_cfg_str(cfg, "DP_LOG_LEVEL"), "debug");
	assert_int_equal(pl_cfg_int(cfg, "DP_PARTITIONS"), 1024);
	assert_int_equal(pl_cfg_int(cfg, "DP_SHUTDOWN_TIMEOUT_MS"), 0);
	assert_string_equal(pl_cfg_str(cfg, "DP_MODE"), "safe");
	assert_string_equal(pl_cfg_str(cfg, "DP_API_TOKEN"),
	                    "tok-default-secret"); /* empty=unset */
	assert_string_equal(pl_cfg_str(cfg, "DP_TLS_KEY_FILE"), "/etc/dp/key.pem");
	pl_cfg_destroy(cfg);
}

static void bools(void **state)
{
	(void)state;
	static const struct {
		const char *env;
		bool want;
	} cases[] = {{"DP_DRY_RUN=true", true}, {"DP_DRY_RUN=FALSE", false},
	             {"DP_DRY_RUN=1", true},    {"DP_DRY_RUN=0", false},
	             {"DP_DRY_RUN=Yes", true},  {"DP_DRY_RUN=no", false},
	             {"DP_DRY_RUN=ON", true},   {"DP_DRY_RUN=off", false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *env[] = {"DP_REDIS_URL=r", (char *)cases[i].env, NULL};
		int code;
		pl_cfg_t *cfg = load(env, NULL, &code);
		assert_non_null(cfg);
		assert_int_equal(pl_cfg_bool(cfg, "DP_DRY_RUN"), cases[i].want);
		pl_cfg_destroy(cfg);
	}
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_DRY_RUN=maybe", NULL},
	              "DP_DRY_RUN: 'maybe' is not a boolean (true|false|1|0|yes|no|on|off)\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_DRY_RUN=2", NULL},
	              "DP_DRY_RUN: '2' is not a boolean (true|false|1|0|yes|no|on|off)\n");
}

static void not_an_integer(void **state)
{
	(void)state;
	const char *bad[] = {"abc", "12abc", " 12", "12 ", "1.5", "0x10", "+", "-", "--1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char var[64], want[128];
		snprintf(var, sizeof(var), "DP_HTTP_PORT=%s", bad[i]);
		snprintf(want, sizeof(want), "DP_HTTP_PORT: '%s' is not an integer\n", bad[i]);
		expect_errors((char *[]){"DP_REDIS_URL=r", var, NULL}, want);
	}
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_PORT=99999999999999999999", NULL},
	              "DP_HTTP_PORT: '99999999999999999999' is out of the 64-bit integer "
	              "range\n");
}

static void integer_bounds(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_PORT=70000", NULL},
	              "DP_HTTP_PORT: 70000 is above the maximum 65535\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_PORT=0", NULL},
	              "DP_HTTP_PORT: 0 is below the minimum 1\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_PORT=-5", NULL},
	              "DP_HTTP_PORT: -5 is below the minimum 1\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_MAX_BODY=1023", NULL},
	              "DP_HTTP_MAX_BODY: 1023 is below the minimum 1024\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_THREADS=65", NULL},
	              "DP_HTTP_THREADS: 65 is above the maximum 64\n");
}

static void bad_enum(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_LOG_LEVEL=loud", NULL},
	              "DP_LOG_LEVEL: 'loud' is not one of debug|info|warn|error\n");
	/* a prefix of a choice is not a choice */
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_MODE=fas", NULL},
	              "DP_MODE: 'fas' is not one of fast|safe\n");
}

static void missing_required(void **state)
{
	(void)state;
	expect_errors((char *[]){NULL}, "DP_REDIS_URL: required but not set\n");
	expect_errors((char *[]){"DP_REDIS_URL=", NULL}, "DP_REDIS_URL: required but not set\n");
}

static void unknown_settings(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_HTTP_PROT=8080", NULL},
	              "DP_HTTP_PROT: unknown setting (did you mean DP_HTTP_PORT?)\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_LOGLEVEL=info", NULL},
	              "DP_LOGLEVEL: unknown setting (did you mean DP_LOG_LEVEL?)\n");
	/* not ours: another binary's settings (far from every name of ours), other prefixes,
	 * script variables, entries without '=' */
	char *env[] = {"DP_REDIS_URL=r",
	               "HOME=/root",
	               "DPX=1",
	               "DP_TEST_SEED=4",
	               "DP_STACK_DIR=/tmp/x",
	               "DP_NOEQUALS",
	               "DP_MONGO_URI=mongodb://x/",
	               "DP_COMPLETELY_DIFFERENT=1",
	               NULL};
	int code;
	pl_cfg_t *cfg = load(env, NULL, &code);
	assert_non_null(cfg);
	pl_cfg_destroy(cfg);
}

static void kafka_props(void **state)
{
	(void)state;
	char *env[] = {"DP_KAFKA_PROP_linger_ms=5",           "DP_REDIS_URL=r",
	               "DP_KAFKA_PROP_SASL_MECHANISMS=PLAIN", "DP_KAFKA_PROP_client_id=a=b",
	               "DP_KAFKA_PROP_linger_ms=7",           NULL};
	int code;
	pl_cfg_t *cfg = load(env, NULL, &code);
	assert_non_null(cfg);
	assert_int_equal(pl_cfg_kafka_prop_count(cfg), 3);
	const char *key, *value;
	pl_cfg_kafka_prop(cfg, 0, &key, &value);
	assert_string_equal(key, "linger.ms");
	assert_string_equal(value, "5");
	pl_cfg_kafka_prop(cfg, 1, &key, &value);
	assert_string_equal(key, "sasl.mechanisms");
	assert_string_equal(value, "PLAIN");
	pl_cfg_kafka_prop(cfg, 2, &key, &value);
	assert_string_equal(key, "client.id");
	assert_string_equal(value, "a=b");
	pl_cfg_destroy(cfg);

	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_KAFKA_PROP_=1", NULL},
	              "DP_KAFKA_PROP_: empty property name (use DP_KAFKA_PROP_<name>, e.g. "
	              "DP_KAFKA_PROP_linger_ms)\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_KAFKA_PROP_linger__ms=1", NULL},
	              "DP_KAFKA_PROP_linger__ms: 'linger..ms' is not a valid property name "
	              "(letters, digits, single '_')\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_KAFKA_PROP_a-b=1", NULL},
	              "DP_KAFKA_PROP_a-b: 'a-b' is not a valid property name (letters, digits, "
	              "single '_')\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_KAFKA_PROP__x=1", NULL},
	              "DP_KAFKA_PROP__x: '.x' is not a valid property name (letters, digits, "
	              "single '_')\n");
}

static void string_length_bounds(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_API_TOKEN=short", NULL},
	              "DP_API_TOKEN: 5 characters is below the minimum length 8\n");
	char token[80] = "DP_API_TOKEN=";
	memset(token + strlen(token), 'k', 65);
	expect_errors((char *[]){"DP_REDIS_URL=r", token, NULL},
	              "DP_API_TOKEN: 65 characters is above the maximum length 64\n");
	token[strlen("DP_API_TOKEN=") + 64] = '\0';
	int code;
	pl_cfg_t *cfg = load((char *[]){"DP_REDIS_URL=r", token, NULL}, NULL, &code);
	assert_non_null(cfg);
	assert_int_equal(strlen(pl_cfg_str(cfg, "DP_API_TOKEN")), 64);
	pl_cfg_destroy(cfg);
}

static void secrets_never_echoed(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_PIN=hunter2", NULL},
	              "DP_PIN: '***' is not an integer\n");
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_PIN=12345", NULL},
	              "DP_PIN: *** is above the maximum 9999\n");
}

/* A secret may come from a mounted file (DP_X_FILE): content without trailing newlines. */
static void secret_from_file(void **state)
{
	(void)state;
	char path[] = "/tmp/dp-test-cfg-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "4321\n", 5), 5);
	close(fd);
	char var[128];
	snprintf(var, sizeof(var), "DP_PIN_FILE=%s", path);
	int code;
	pl_cfg_t *cfg = load((char *[]){"DP_REDIS_URL=r", var, NULL}, NULL, &code);
	assert_non_null(cfg);
	assert_int_equal(pl_cfg_int(cfg, "DP_PIN"), 4321);
	pl_cfg_destroy(cfg);
	expect_errors((char *[]){"DP_REDIS_URL=r", "DP_PIN=1", var, NULL},
	              "DP_PIN_FILE: set either DP_PIN or DP_PIN_FILE, not both\n");
	unlink(path);
	snprintf(var, sizeof(var), "DP_PIN_FILE=%s", path);
	char *errors = NULL;
	cfg = load((char *[]){"DP_REDIS_URL=r", var, NULL}, &errors, &code);
	assert_null(cfg);
	assert_non_null(strstr(errors, "DP_PIN_FILE: cannot read /tmp/dp-test-cfg-"));
	free(errors);
}

static void every_error_at_once(void **state)
{
	(void)state;
	expect_errors((char *[]){"DP_HTTP_PORT=abc", "DP_LOG_LEVEL=loud", "DP_HTTP_PROT=1",
	                         "DP_DRY_RUN=perhaps", "DP_PARTITIONS=0", "DP_KAFKA_PROP_=x", NULL},
	              "DP_HTTP_PROT: unknown setting (did you mean DP_HTTP_PORT?)\n"
	              "DP_KAFKA_PROP_: empty property name (use DP_KAFKA_PROP_<name>, e.g. "
	              "DP_KAFKA_PROP_linger_ms)\n"
	              "DP_LOG_LEVEL: 'loud' is not one of debug|info|warn|error\n"
	              "DP_PARTITIONS: 0 is below the minimum 1\n"
	              "DP_HTTP_PORT: 'abc' is not an integer\n"
	              "DP_REDIS_URL: required but not set\n"
	              "DP_DRY_RUN: 'perhaps' is not a boolean "
	              "(true|false|1|0|yes|no|on|off)\n");
}

static void unknown_argument(void **state)
{
	(void)state;
	char *argv[] = {"dronepipe-test", "--frobnicate", NULL};
	char *errors;
	int code;
	assert_null(load_args((char *[]){"DP_REDIS_URL=r", NULL}, 2, argv, &errors, &code));
	assert_int_equal(code, 1);
	assert_non_null(strstr(errors, "argument '--frobnicate': not recognised"));
	free(errors);
}

/* Runs fn with stdout sent to a temporary file; returns what it printed. Caller frees. */
static char *capture_stdout(void (*fn)(void *), void *arg)
{
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	FILE *tmp = tmpfile();
	dup2(fileno(tmp), STDOUT_FILENO);
	fn(arg);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	long size = lseek(fileno(tmp), 0, SEEK_END);
	char *text = malloc((size_t)size + 1);
	assert_int_equal(pread(fileno(tmp), text, (size_t)size, 0), size);
	text[size] = '\0';
	fclose(tmp);
	return text;
}

typedef struct run {
	char *argv[3];
	pl_cfg_t *cfg;
	int code;
} run_t;

static void run_load(void *arg)
{
	run_t *run = arg;
	char *env[] = {"DP_API_TOKEN=supersecretvalue", "DP_HTTP_PORT=bad", NULL};
	run->cfg = load_args(env, 2, run->argv, NULL, &run->code);
}

/* The line of text that starts with prefix, copied into out. */
static const char *line_of(const char *text, const char *prefix, char *out, size_t size)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			size_t n = strcspn(p, "\n");
			snprintf(out, size, "%.*s", (int)n, p);
			return out;
		}
	}
	fail_msg("no line starting with '%s' in:\n%s", prefix, text);
	return NULL;
}

static void help_lists_every_option_and_masks_secrets(void **state)
{
	(void)state;
	run_t run = {.argv = {"dronepipe-test", "--help", NULL}};
	char *text = capture_stdout(run_load, &run);
	assert_null(run.cfg);
	assert_int_equal(run.code, 0); /* --help wins over the bad DP_HTTP_PORT */
	assert_true(strncmp(text, "usage: dronepipe-test", 21) == 0);
	char line[512], prefix[64];
	for (size_t t = 0; tables[t]; t++) {
		for (const pl_cfg_opt_t *o = tables[t]; o->name; o++) {
			snprintf(prefix, sizeof(prefix), "  %s ", o->name);
			line_of(text, prefix, line, sizeof(line));
			assert_non_null(strstr(line, o->help));
			assert_true((strstr(line, "(required)") != NULL) == o->required);
			assert_true((strstr(line, "(secret)") != NULL) == o->secret);
		}
	}
	line_of(text, "  DP_HTTP_PORT ", line, sizeof(line));
	assert_non_null(strstr(line, " int "));
	assert_non_null(strstr(line, " 8080 "));
	assert_non_null(strstr(line, " 1..65535 "));
	line_of(text, "  DP_LOG_LEVEL ", line, sizeof(line));
	assert_non_null(strstr(line, " info "));
	assert_non_null(strstr(line, " debug|info|warn|error "));
	line_of(text, "  DP_TLS_CERT_FILE ", line, sizeof(line));
	assert_non_null(strstr(line, " - "));
	line_of(text, "  DP_API_TOKEN ", line, sizeof(line));
	assert_non_null(strstr(line, " *** "));
	assert_non_null(strstr(line, " length 8..64 "));
	line_of(text, "  DP_KAFKA_PROP_<name> ", line, sizeof(line));
	assert_null(strstr(text, "tok-default-secret"));
	assert_null(strstr(text, "supersecretvalue"));
	free(text);
}

static void version(void **state)
{
	(void)state;
	run_t run = {.argv = {"dronepipe-test", "--version", NULL}};
	char *text = capture_stdout(run_load, &run);
	assert_null(run.cfg);
	assert_int_equal(run.code, 0);
	assert_string_equal(text, "dronepipe 0.1.0\n");
	free(text);
}

/* Runs fn in a child and reports whether it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr)) /* quiet when it can; the test needs not */
			clearerr(stdout);
		fn();
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static pl_cfg_t *loaded(void)
{
	int code;
	return load((char *[]){"DP_REDIS_URL=r", NULL}, NULL, &code);
}

static void get_unknown_name(void)
{
	pl_cfg_str(loaded(), "DP_NOT_IN_ANY_TABLE");
}

static void get_wrong_type(void)
{
	pl_cfg_int(loaded(), "DP_REDIS_URL");
}

static void duplicate_name(void)
{
	static const pl_cfg_opt_t again[] = {
	    {"DP_LOG_LEVEL", PL_CFG_STR, NULL, 0, 0, false, false, NULL, "twice"}, {NULL}};
	const pl_cfg_opt_t *const dup_tables[] = {pl_cfg_common, again, NULL};
	int code;
	pl_cfg_load("x", dup_tables, 0, NULL, (char *[]){NULL}, stderr, &code);
}

static void bad_default(void)
{
	static const pl_cfg_opt_t bad[] = {
	    {"DP_X", PL_CFG_INT, "ten", 0, 0, false, false, NULL, "bad default"}, {NULL}};
	const pl_cfg_opt_t *const bad_tables[] = {bad, NULL};
	int code;
	pl_cfg_load("x", bad_tables, 0, NULL, (char *[]){NULL}, stderr, &code);
}

static void programming_errors_abort(void **state)
{
	(void)state;
	assert_true(aborts(get_unknown_name));
	assert_true(aborts(get_wrong_type));
	assert_true(aborts(duplicate_name));
	assert_true(aborts(bad_default));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(values_override_defaults),
	    cmocka_unit_test(bools),
	    cmocka_unit_test(not_an_integer),
	    cmocka_unit_test(integer_bounds),
	    cmocka_unit_test(bad_enum),
	    cmocka_unit_test(missing_required),
	    cmocka_unit_test(unknown_settings),
	    cmocka_unit_test(secret_from_file),
	    cmocka_unit_test(kafka_props),
	    cmocka_unit_test(string_length_bounds),
	    cmocka_unit_test(secrets_never_echoed),
	    cmocka_unit_test(every_error_at_once),
	    cmocka_unit_test(unknown_argument),
	    cmocka_unit_test(help_lists_every_option_and_masks_secrets),
	    cmocka_unit_test(version),
	    cmocka_unit_test(programming_errors_abort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
