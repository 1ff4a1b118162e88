/* test_log.c — unit tests of pipeline/log.c: JSON escaping, whole lines parsed back with jansson,
 * thread context, level filtering, long lines and concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char *escape(const char *src, size_t len)
{
	size_t need = pl_log_escape(NULL, 0, src, len);
	char *dst = malloc(need + 1);
	assert_int_equal(pl_log_escape(dst, need + 1, src, len), need);
	assert_int_equal(strlen(dst), need);
	return dst;
}

#define assert_escape(src, want)                                                                   \
	do {                                                                                       \
		char *got_ = escape((src), sizeof(src) - 1);                                       \
		assert_string_equal(got_, (want));                                                 \
		free(got_);                                                                        \
	} while (0)

static void escape_plain_and_quotes(void **state)
{
	(void)state;
	assert_escape("hello", "hello");
	assert_escape("", "");
	assert_escape("say \"hi\"", "say \\\"hi\\\"");
	assert_escape("C:\\dir\\", "C:\\\\dir\\\\");
	assert_escape("a/b", "a/b");
}

static void escape_control_chars(void **state)
{
	(void)state;
	assert_escape("a\nb\rc\td", "a\\nb\\rc\\td");
	assert_escape("\b\f", "\\b\\f");
	assert_escape("\x01\x1f\x7f", "\\u0001\\u001f\\u007f");
	assert_escape("nul\0here", "nul\\u0000here");
}

static void escape_utf8_kept(void **state)
{
	(void)state;
	assert_escape("caf\xC3\xA9", "caf\xC3\xA9");                                   /* é */
	assert_escape("\xE2\x82\xAC 5", "\xE2\x82\xAC 5");                             /* € */
	assert_escape("\xF0\x9F\x9A\x81", "\xF0\x9F\x9A\x81");                         /* 🚁 */
	assert_escape("\xEF\xBF\xBF\xF4\x8F\xBF\xBF", "\xEF\xBF\xBF\xF4\x8F\xBF\xBF"); /* edges */
}

#define FFFD "\xEF\xBF\xBD"

static void escape_invalid_utf8_replaced(void **state)
{
	(void)state;
	assert_escape("a\xFF"
	              "b",
	              "a" FFFD "b");
	assert_escape("\x80", FFFD);                            /* lone continuation */
	assert_escape("\xE2\x82", FFFD FFFD);                   /* truncated sequence */
	assert_escape("\xC0\xAF", FFFD FFFD);                   /* overlong '/' */
	assert_escape("\xED\xA0\x80", FFFD FFFD FFFD);          /* UTF-16 surrogate */
	assert_escape("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* above U+10FFFF */
	assert_escape("\xC3"
	              "A",
	              FFFD "A");
}

static void escape_truncation_never_splits(void **state)
{
	(void)state;
	char buf[8];
	/* "ab\"c" needs 5; with room for 3 the escape of '"' does not fit and is not started */
	memset(buf, 'X', sizeof(buf));
	assert_int_equal(pl_log_escape(buf, 4, "ab\"c", 4), 5);
	assert_string_equal(buf, "ab");
	/* a multi-byte character is never cut */
	assert_int_equal(pl_log_escape(buf, 3, "a\xE2\x82\xAC", 4), 4);
	assert_string_equal(buf, "a");
	/* a \u00XX escape is never cut */
	assert_int_equal(pl_log_escape(buf, 6, "x\x01", 2), 7);
	assert_string_equal(buf, "x");
	/* nothing after the first piece that did not fit, even if a later one would */
	assert_int_equal(pl_log_escape(buf, 3, "a\x01z", 3), 8);
	assert_string_equal(buf, "a");
	/* exact fit */
	assert_int_equal(pl_log_escape(buf, 5, "ab\"c", 4), 5);
	assert_string_equal(buf, "ab\\\"");
	assert_int_equal(pl_log_escape(buf, 6, "ab\"c", 4), 5);
	assert_string_equal(buf, "ab\\\"c");
	assert_int_equal(pl_log_escape(buf, 1, "abc", 3), 3);
	assert_string_equal(buf, "");
	assert_int_equal(pl_log_escape(NULL, 0, "abc", 3), 3);
}

static void levels(void **state)
{
	(void)state;
	assert_int_equal(pl_log_level_parse("debug"), PL_LOG_DEBUG);
	assert_int_equal(pl_log_level_parse("info"), PL_LOG_INFO);
	assert_int_equal(pl_log_level_parse("warn"), PL_LOG_WARN);
	assert_int_equal(pl_log_level_parse("error"), PL_LOG_ERROR);
	assert_int_equal(pl_log_level_parse("loud"), -1);
	assert_int_equal(pl_log_level_parse(NULL), -1);
	assert_string_equal(pl_log_level_name(PL_LOG_WARN), "warn");
	assert_string_equal(pl_log_level_name(PL_LOG_FATAL), "fatal");
}

/* Output captured on a pipe (or a temporary file for long output). */
static int fds[2];

static int setup_pipe(void **state)
{
	(void)state;
	if (pipe(fds) != 0)
		return -1;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	pl_log_set_fd(fds[1]);
	return 0;
}

static int teardown_pipe(void **state)
{
	(void)state;
	pl_log_set_fd(-1);
	pl_log_init("dronepipe", PL_LOG_INFO);
	pl_log_ctx_clear();
	close(fds[0]);
	close(fds[1]);
	return 0;
}

/* Reads what is in the pipe now ("" when empty). Caller frees. */
static char *drain(void)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (cap - len < 4096)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fds[0], buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* Parses the only line in the pipe. */
static json_t *one_line(void)
{
	char *text = drain();
	size_t len = strlen(text);
	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1));
	json_error_t jerr;
	json_t *line = json_loads(text, 0, &jerr);
	if (!line)
		fail_msg("not JSON: %s (%s)", jerr.text, text);
	free(text);
	return line;
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void full_line(void **state)
{
	(void)state;
	pl_log_init("ingress", PL_LOG_INFO);
	pl_log(PL_LOG_INFO, "request_accepted",
	       PL_LOG_FIELDS(PL_LS("topic", "drone.requests"), PL_LI("partition", 3),
	                     PL_LI("offset", INT64_C(9007199254740993)), PL_LS("err", NULL),
	                     PL_LS("route", "/v1/\"x\"\n")),
	       "accepted %d of %s", 2, "bad\xFF");
	json_t *line = one_line();
	const char *ts = jstr(line, "ts");
	int y, mo, d, h, mi, s, ms;
	char z;
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(
	    sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8);
	assert_int_equal(z, 'Z');
	assert_true(y >= 2024 && mo >= 1 && mo <= 12 && ms >= 0 && ms <= 999);
	assert_string_equal(jstr(line, "level"), "info");
	assert_string_equal(jstr(line, "svc"), "ingress");
	assert_string_equal(jstr(line, "event"), "request_accepted");
	assert_string_equal(jstr(line, "msg"), "accepted 2 of bad" FFFD);
	assert_string_equal(jstr(line, "topic"), "drone.requests");
	assert_int_equal(json_integer_value(json_object_get(line, "partition")), 3);
	assert_true(json_integer_value(json_object_get(line, "offset")) ==
	            INT64_C(9007199254740993));
	assert_true(json_is_null(json_object_get(line, "err")));
	assert_string_equal(jstr(line, "route"), "/v1/\"x\"\n");
	assert_null(json_object_get(line, "trace_id"));
	assert_null(json_object_get(line, "delivery_id"));
	/* key order: ts, level, svc, event, msg first */
	const char *want[] = {"ts", "level", "svc", "event", "msg", "topic"};
	void *it = json_object_iter(line);
	for (size_t i = 0; i < 6; i++, it = json_object_iter_next(line, it))
		assert_string_equal(json_object_iter_key(it), want[i]);
	json_decref(line);

	pl_log(PL_LOG_WARN, "no_fields", NULL, "plain");
	line = one_line();
	assert_string_equal(jstr(line, "level"), "warn");
	assert_string_equal(jstr(line, "msg"), "plain");
	assert_int_equal(json_object_size(line), 5);
	json_decref(line);
}

static void *log_with_ctx(void *arg)
{
	(void)arg;
	pl_log_ctx_set("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	               "6f1c0b3e-6a51-4a4e-9d59-3a0f3f1f7a10");
	pl_log(PL_LOG_INFO, "handled", NULL, "in handler");
	return NULL;
}

static void thread_context(void **state)
{
	(void)state;
	pthread_t t;
	pthread_create(&t, NULL, log_with_ctx, NULL);
	pthread_join(t, NULL);
	json_t *line = one_line();
	assert_string_equal(jstr(line, "trace_id"),
	                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	assert_string_equal(jstr(line, "delivery_id"), "6f1c0b3e-6a51-4a4e-9d59-3a0f3f1f7a10");
	json_decref(line);

	/* the other thread's context does not leak into this one */
	pl_log(PL_LOG_INFO, "main", NULL, "main thread");
	line = one_line();
	assert_null(json_object_get(line, "trace_id"));
	json_decref(line);

	pl_log_ctx_set("t-1", NULL);
	pl_log(PL_LOG_INFO, "main", PL_LOG_FIELDS(PL_LS("topic", "x")), "with trace");
	line = one_line();
	assert_string_equal(jstr(line, "trace_id"), "t-1");
	assert_null(json_object_get(line, "delivery_id"));
	json_decref(line);

	pl_log_ctx_clear();
	pl_log(PL_LOG_INFO, "main", NULL, "cleared");
	line = one_line();
	assert_null(json_object_get(line, "trace_id"));
	json_decref(line);
}

static void level_filter(void **state)
{
	(void)state;
	pl_log_init("svc", PL_LOG_WARN);
	assert_false(pl_log_enabled(PL_LOG_INFO));
	assert_true(pl_log_enabled(PL_LOG_WARN));
	pl_log(PL_LOG_DEBUG, "dropped", NULL, "debug");
	pl_log(PL_LOG_INFO, "dropped", NULL, "info");
	char *text = drain();
	assert_string_equal(text, "");
	free(text);
	pl_log(PL_LOG_ERROR, "kept", NULL, "error");
	json_t *line = one_line();
	assert_string_equal(jstr(line, "level"), "error");
	json_decref(line);

	pl_log_init("svc", PL_LOG_DEBUG);
	pl_log(PL_LOG_DEBUG, "kept", NULL, "debug");
	line = one_line();
	assert_string_equal(jstr(line, "level"), "debug");
	json_decref(line);
}

/* Reads a temporary file back from the start. Caller frees. */
static char *slurp(FILE *f)
{
	fflush(f);
	long size = lseek(fileno(f), 0, SEEK_END);
	char *buf = malloc((size_t)size + 1);
	assert_int_equal(pread(fileno(f), buf, (size_t)size, 0), size);
	buf[size] = '\0';
	return buf;
}

static void long_line_not_cut(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	pl_log_set_fd(fileno(f));
	size_t n = 300000;
	char *msg = malloc(n + 1), *val = malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		msg[i] = "ab\"\\\n\x01"[i % 6];
		val[i] = (char)('a' + i % 26);
	}
	msg[n] = val[n] = '\0';
	pl_log(PL_LOG_ERROR, "big", PL_LOG_FIELDS(PL_LS("payload", val)), "%s", msg);
	char *text = slurp(f);
	assert_int_equal(strchr(text, '\n') - text, (long)strlen(text) - 1);
	json_t *line = json_loads(text, 0, NULL);
	assert_non_null(line);
	assert_string_equal(jstr(line, "msg"), msg);
	assert_string_equal(jstr(line, "payload"), val);
	json_decref(line);
	free(text);
	free(msg);
	free(val);
	fclose(f);
}

static int tmp_fd;

static void *write_lines(void *arg)
{
	char msg[5000];
	memset(msg, 'a' + (int)(intptr_t)arg, sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int i = 0; i < 200; i++)
		pl_log(PL_LOG_INFO, "spam", PL_LOG_FIELDS(PL_LI("i", i)), "%s", msg);
	return NULL;
}

static void concurrent_lines_do_not_interleave(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	tmp_fd = fileno(f);
	pl_log_set_fd(tmp_fd);
	pthread_t t[4];
	for (intptr_t i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, write_lines, (void *)i);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	char *text = slurp(f);
	int lines = 0;
	for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
		*nl = '\0';
		json_t *line = json_loads(p, 0, NULL);
		assert_non_null(line);
		const char *m = jstr(line, "msg");
		assert_int_equal(strlen(m), 4999);
		assert_int_equal(strspn(m, (char[]){m[0], 0}), 4999);
		json_decref(line);
	}
	assert_int_equal(lines, 800);
	free(text);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(escape_plain_and_quotes),
	    cmocka_unit_test(escape_control_chars),
	    cmocka_unit_test(escape_utf8_kept),
	    cmocka_unit_test(escape_invalid_utf8_replaced),
	    cmocka_unit_test(escape_truncation_never_splits),
	    cmocka_unit_test(levels),
	    cmocka_unit_test_setup_teardown(full_line, setup_pipe, teardown_pipe),
	    cmocka_unit_test_setup_teardown(thread_context, setup_pipe, teardown_pipe),
	    cmocka_unit_test_setup_teardown(level_filter, setup_pipe, teardown_pipe),
	    cmocka_unit_test_setup_teardown(long_line_not_cut, setup_pipe, teardown_pipe),
	    cmocka_unit_test_setup_teardown(concurrent_lines_do_not_interleave, setup_pipe,
	                                    teardown_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
