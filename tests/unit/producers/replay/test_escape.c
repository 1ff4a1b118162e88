/* test_escape.c — unit tests of the ops CLI's output safety (escape.h), by class of hostile
 * text: control characters (C0, DEL, ESC sequences, C1, bidi overrides), NUL, invalid UTF-8
 * (lone continuation bytes, overlongs, surrogates, > U+10FFFF, truncated sequences), huge text
 * (the limit cuts and says so), and the growing buffer with text far beyond any fixed size. The
 * terminal text must contain no byte a terminal acts on; the JSON must always parse. Also the
 * text of a group's members in replay's refusal, with 2,000-byte hostile client ids (it used to
 * overflow its heap buffer from the second such member on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin.h"
#include "mem.h"
#include "replay/escape.h"
#include "replay/ops.h"

/* True when s holds only printable ASCII (what the escaping of ASCII input must give). */
static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void expect_escape(const char *in, size_t len, const char *want)
{
	char *got = ops_escape(in, len, 0);
	assert_string_equal(got, want);
	pl_free(got);
}

static void test_controls(void **state)
{
	(void)state;
	expect_escape("plain text", 10, "plain text");
	expect_escape("a\nb\rc\td", 7, "a\\nb\\rc\\td");
	expect_escape("\x1b[2J\x1b]0;pwned\x07", 14, "\\x1b[2J\\x1b]0;pwned\\x07");
	expect_escape("del\x7f", 4, "del\\x7f");
	expect_escape("back\\slash", 10, "back\\\\slash"); /* unambiguous: \x41 was not 'A' */
	expect_escape("a\0b", 3, "a\\x00b");               /* NUL inside */
	/* C1 controls (CSI as U+009B) and bidi / invisible format characters */
	expect_escape("\xc2\x9b"
	              "31m",
	              5, "\\u009b31m");
	expect_escape("x\xe2\x80\xaey", 5, "x\\u202ey");
	expect_escape("\xe2\x80\x8b\xef\xbb\xbf", 6, "\\u200b\\ufeff");
	/* printable UTF-8 stays as it is */
	expect_escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x9a\x81", 15,
	              "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x9a\x81");
	char *dash = ops_escape(NULL, 0, 0);
	assert_string_equal(dash, "-");
	pl_free(dash);
	char *empty = ops_escape_str("", 0);
	assert_string_equal(empty, "");
	pl_free(empty);
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_escape("\xff\xfe", 2, "\\xff\\xfe");
	expect_escape("a\x80z", 3, "a\\x80z");                        /* lone continuation */
	expect_escape("\xc0\xaf", 2, "\\xc0\\xaf");                   /* overlong '/' */
	expect_escape("\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf");          /* overlong, 3 bytes */
	expect_escape("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");          /* surrogate U+D800 */
	expect_escape("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
	expect_escape("ok\xe2\x82", 4, "ok\\xe2\\x82");               /* cut in the middle */
	assert_true(ops_utf8_valid("h\xc3\xa9", 3));
	assert_true(ops_utf8_valid("", 0));
	assert_true(ops_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8 (JSON escapes it) */
	assert_false(ops_utf8_valid("\xc3", 1));
	assert_false(ops_utf8_valid("\xed\xbf\xbf", 3));
	assert_false(ops_utf8_valid("\xf8\x88\x80\x80\x80", 5));
	/* every byte value, alone: the terminal text is printable ASCII (the input is not
	 * printable UTF-8 on its own except 0x20..0x7e) */
	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		char *out = ops_escape(&in, 1, 0);
		assert_true(printable_ascii(out));
		pl_free(out);
	}
}

static void test_limit(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *huge = pl_malloc(n);
	memset(huge, 'x', n);
	huge[5] = '\x1b';
	char *out = ops_escape(huge, n, 100);
	/* 100 input bytes (one of them escaped to 4), then the mark with the whole length */
	assert_int_equal(strlen(out), 103 + strlen("...(truncated, 1048576 bytes)"));
	assert_non_null(strstr(out, "xxxxx\\x1bxxx"));
	assert_non_null(strstr(out, "...(truncated, 1048576 bytes)"));
	pl_free(out);
	out = ops_escape(huge, n, 0); /* no limit: all of it */
	assert_int_equal(strlen(out), n + 3);
	pl_free(out);
	pl_free(huge);
	/* a limit inside a multi-byte character: no half character reaches the terminal */
	out = ops_escape("\xe2\x82\xac\xe2\x82\xac", 6, 4);
	assert_string_equal(out, "\xe2\x82\xac\\xe2...(truncated, 6 bytes)");
	pl_free(out);
}

static void test_buf_grows(void **state)
{
	(void)state;
	ops_buf_t b = {0};
	char chunk[2000];
	memset(chunk, 'c', sizeof(chunk));
	for (int i = 0; i < 50; i++) {
		ops_buf_append(&b, chunk, sizeof(chunk));
		ops_buf_printf(&b, "|%d|%s", i, i % 2 ? "odd" : "even");
	}
	assert_int_equal(b.len, strlen(b.data));
	assert_true(b.len > 100000);
	assert_non_null(strstr(b.data, "|49|odd"));
	char *s = ops_buf_take(&b);
	assert_null(b.data);
	pl_free(s);
	s = ops_buf_take(&b); /* empty */
	assert_string_equal(s, "");
	pl_free(s);
}

/* JSON: whatever the bytes, the document encodes, parses back and keeps valid text intact. */
static void test_json(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		const char *want; /* UTF-8 after the round trip */
		size_t want_len;
	} cases[] = {
	    {"plain", 5, "plain", 5},
	    {"\x1b[31mred\x07", 9, "\x1b[31mred\x07", 9},
	    {"a\0b", 3, "a\0b", 3},
	    {"\xff", 1, "\xef\xbf\xbd", 3},
	    {"a\xc0\xafz", 4, "a\xef\xbf\xbd\xef\xbf\xbdz", 8},
	    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
	    {"h\xc3\xa9", 3, "h\xc3\xa9", 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = json_object();
		json_object_set_new(doc, "k", ops_json_text(cases[i].in, cases[i].len));
		char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
		assert_non_null(text);
		assert_true(printable_ascii(text));
		json_error_t jerr;
		json_t *back = json_loads(text, JSON_ALLOW_NUL, &jerr);
		assert_non_null(back);
		json_t *k = json_object_get(back, "k");
		assert_int_equal(json_string_length(k), cases[i].want_len);
		assert_memory_equal(json_string_value(k), cases[i].want, cases[i].want_len);
		json_decref(back);
		free(text);
		json_decref(doc);
	}
	json_t *n = ops_json_str(NULL);
	assert_true(json_is_null(n));
	json_decref(n);
	/* ops_json_print: one ASCII line; a document that cannot be encoded still prints JSON */
	char *out = NULL;
	size_t out_len = 0;
	FILE *f = open_memstream(&out, &out_len);
	json_t *doc = json_pack("{s:o}", "v", ops_json_text("\xe2\x80\xae\xff", 4));
	assert_int_equal(ops_json_print(f, doc), 0);
	assert_int_equal(ops_json_print(f, NULL), -1);
	fclose(f);
	json_decref(doc);
	assert_string_equal(out, "{\"v\":\"\\u202E\\uFFFD\"}\n"
	                         "{\"error\":\"this output could not be encoded as JSON\"}\n");
	free(out);
}

static char *hostile_id(const char *prefix, size_t len)
{
	char *id = pl_malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		id[i] = "ab\xff\x1b\xc3\xa9\n\x80"[i % 8];
	memcpy(id, prefix, strlen(prefix));
	id[len] = '\0';
	return id;
}

static void test_members_text(void **state)
{
	(void)state;
	pl_admin_member_t m[3];
	for (int i = 0; i < 3; i++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "client%d-", i);
		m[i].client_id = hostile_id(prefix, 2000);
		m[i].host = hostile_id("/10.0.0.1", 2000);
		m[i].member_id = hostile_id("member-", 2000);
	}
	pl_admin_group_t g = {.group_id = "g", .state = "Stable", .members = m, .member_count = 3};
	char *text = ops_members_text(&g);
	assert_true(printable_ascii(text) || ops_utf8_valid(text, strlen(text)));
	for (const char *c = text; *c; c++)
		assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
	/* each member named, each of its 3 ids cut and marked with its size */
	assert_non_null(strstr(text, "client0-"));
	assert_non_null(strstr(text, "client1-"));
	assert_non_null(strstr(text, "client2-"));
	size_t marks = 0;
	for (const char *p = text; (p = strstr(p, "...(truncated, 2000 bytes)")); p++)
		marks++;
	assert_int_equal(marks, 9);
	assert_non_null(strstr(text, "\\xff\\x1b"));
	pl_free(text);
	/* short ids are printed whole */
	pl_admin_member_t one = {"member-1", "dronepipe-package", "/127.0.0.1"};
	g.members = &one;
	g.member_count = 1;
	text = ops_members_text(&g);
	assert_string_equal(text, "dronepipe-package (host /127.0.0.1, member member-1)");
	pl_free(text);
	g.member_count = 0;
	text = ops_members_text(&g);
	assert_string_equal(text, "");
	pl_free(text);
	for (int i = 0; i < 3; i++) {
		pl_free(m[i].client_id);
		pl_free(m[i].host);
		pl_free(m[i].member_id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_controls), cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_limit),    cmocka_unit_test(test_buf_grows),
	    cmocka_unit_test(test_json),     cmocka_unit_test(test_members_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
