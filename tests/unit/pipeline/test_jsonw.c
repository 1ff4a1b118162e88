/* test_jsonw.c — pl_json_text against json_dumps(JSON_COMPACT | JSON_SORT_KEYS): the same
 * bytes for every value without reals (fixed cases and 2,000 random trees), reals that read
 * back as the same double in the fewest digits, escapes, key order, depth limit. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonw.h"
#include "mem.h"

/* pl_json_text(v) must be json_dumps's text exactly, keys sorted and in insertion order */
static void assert_same_as_jansson(const json_t *v)
{
	for (int sorted = 0; sorted < 2; sorted++) {
		char *want =
		    json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | (sorted ? JSON_SORT_KEYS : 0));
		size_t len = 0;
		char *got =
		    pl_json_text(v, sorted ? PL_JSONW_SORTED : PL_JSONW_INSERTION_ORDER, &len);
		assert_non_null(want);
		assert_non_null(got);
		if (strcmp(want, got) != 0)
			fail_msg("json_dumps: %s\npl_json_text: %s", want, got);
		assert_int_equal(len, strlen(got));
		free(want);
		pl_free(got);
	}
}

static void test_scalars_and_containers(void **state)
{
	(void)state;
	const char *texts[] = {
	    "null",
	    "true",
	    "false",
	    "0",
	    "-1",
	    "9223372036854775807",
	    "-9223372036854775808",
	    "\"\"",
	    "[]",
	    "{}",
	    "[[],{},[{}]]",
	    "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
	    "{\"deliveryId\":\"d-1\",\"version\":5,\"stage\":\"Completed\",\"reason\":null}",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		json_t *v = json_loads(texts[i], JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		assert_same_as_jansson(v);
		json_decref(v);
	}
}

static void test_escapes(void **state)
{
	(void)state;
	/* quote, backslash, every control byte, slash, DEL, UTF-8, an embedded NUL */
	char raw[64];
	size_t n = 0;
	raw[n++] = '"';
	raw[n++] = '\\';
	raw[n++] = '/';
	raw[n++] = 0x7f;
	for (int c = 1; c < 0x20; c++)
		raw[n++] = (char)c;
	memcpy(raw + n, "\xc3\xa9\xe2\x82\xac", 5); /* é € */
	n += 5;
	raw[n++] = '\0';
	raw[n++] = 'x';
	json_t *s = json_stringn(raw, n);
	assert_non_null(s);
	assert_same_as_jansson(s);
	json_t *obj = json_object();
	json_object_setn_new(obj, raw, n, json_true()); /* the same bytes as a key */
	assert_same_as_jansson(obj);
	json_decref(obj);
	json_decref(s);
}

static void test_key_order(void **state)
{
	(void)state;
	/* insertion order is not the output order; "a" before "a\0b" before "ab"; 40 keys take
	 * the heap path */
	json_t *obj = json_object();
	const char *keys[] = {"zeta", "b", "ab", "a", "B", "_", "aa", "a1", "é", "Z"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		json_object_set_new(obj, keys[i], json_integer((json_int_t)i));
	json_object_setn_new(obj, "a\0b", 3, json_null());
	assert_same_as_jansson(obj);
	for (int i = 0; i < 40; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", (i * 17) % 40);
		json_object_set_new(obj, k, json_integer(i));
	}
	assert_same_as_jansson(obj);
	json_decref(obj);
}

/* the real's text reads back as the same double, has no more digits than needed, and is
 * shaped as json_dumps shapes reals */
static void assert_real(double d, const char *want)
{
	char text[32];
	size_t n = pl_json_real_text(d, text);
	assert_int_equal(n, strlen(text));
	if (want && strcmp(text, want) != 0)
		fail_msg("%.17g written \"%s\", want \"%s\"", d, text, want);
	if (strtod(text, NULL) != d)
		fail_msg("\"%s\" reads back as %.17g, not %.17g", text, strtod(text, NULL), d);
	assert_true(strchr(text, '.') || strchr(text, 'e'));
	assert_null(strchr(text, '+'));
	/* at most 17 significant digits, and jansson reads the same real */
	int digits = 0;
	bool seen = false;
	for (const char *p = text; *p && *p != 'e' && strcmp(p, ".0") != 0; p++) {
		seen = seen || (*p >= '1' && *p <= '9');
		digits += seen && *p >= '0' && *p <= '9';
	}
	if (digits > 17)
		fail_msg("\"%s\" has %d significant digits", text, digits);
	json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(back);
	assert_true(json_is_real(back) && json_real_value(back) == d);
	json_decref(back);
}

/* the text of the plain rule: the first of %.15g, %.16g, %.17g that reads back, shaped as
 * json_dumps shapes reals (a '.0' when needed, no '+' or leading zeros in the exponent) */
static void plain_rule(double d, char out[40])
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, 40, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	if (!strchr(out, '.') && !strchr(out, 'e'))
		strcat(out, ".0");
	char *e = strchr(out, 'e');
	if (e) {
		char *q = e + 1, *r = q;
		if (*r == '+')
			r++;
		if (*r == '-')
			*q++ = *r++;
		while (*r == '0' && r[1])
			r++;
		memmove(q, r, strlen(r) + 1);
	}
}

static void assert_plain_rule(double d)
{
	char want[40], got[32];
	plain_rule(d, want);
	pl_json_real_text(d, got);
	if (strcmp(want, got) != 0)
		fail_msg("%.17g written \"%s\", the plain rule writes \"%s\"", d, got, want);
}

static void test_reals(void **state)
{
	(void)state;
	assert_real(47.5624, "47.5624");
	assert_real(-122.2524, "-122.2524");
	assert_real(-122.25240000000001, "-122.25240000000001"); /* another double */
	assert_real(0.1, "0.1");
	assert_real(2.0, "2.0");
	assert_real(-0.0, "-0.0");
	assert_real(1e20, "1e20");
	assert_real(1e-5, "1e-5");
	assert_real(1.5e300, "1.5e300");
	assert_real(0.1 + 0.2, "0.30000000000000004");
	assert_real(DBL_MAX, "1.7976931348623157e308"); /* 17 digits */
	assert_real(DBL_MIN, "2.2250738585072014e-308");
	assert_real(5e-324, NULL); /* 15 digits, though "5e-324" would do */
	assert_real(1.0 / 3.0, "0.3333333333333333");
	assert_real(0.0001, "0.0001");
	assert_real(0.00012, "0.00012");
	assert_real(999999999.999999, "999999999.999999");
	assert_real(1e9, "1000000000.0");
	assert_real(-7.000001, "-7.000001");
	assert_real(123456.5, "123456.5");
	assert_real(0.1234567, "0.1234567");
	srand(7);
	for (int i = 0; i < 20000; i++) {
		uint64_t bits = 0;
		for (int b = 0; b < 4; b++)
			bits = bits << 16 | (uint64_t)(rand() & 0xffff);
		double d;
		memcpy(&d, &bits, sizeof(d));
		if (isfinite(d))
			assert_real(d, NULL);
		double coord = (double)(rand() % 3600000) / 10000.0 - 180.0;
		assert_real(coord, NULL);
		/* the fast path for short decimals writes what the plain rule writes */
		assert_plain_rule(coord);
		assert_plain_rule((double)rand() / 1e6);
		assert_plain_rule(-(double)(rand() % 1000000) / 1e3);
		if (isfinite(d))
			assert_plain_rule(d);
		/* computed positions (full precision), and every magnitude of the fast path */
		double pos = 47.0 + (double)rand() / RAND_MAX;
		assert_real(pos, NULL);
		assert_plain_rule(pos);
		assert_plain_rule(-122.0 - (double)rand() / RAND_MAX);
		double m = (double)rand() / RAND_MAX * pow(10.0, rand() % 20 - 5);
		assert_plain_rule(m);
		assert_plain_rule(-m);
		assert_plain_rule((double)(rand() % 100000) / pow(10.0, rand() % 12));
		assert_plain_rule(nextafter(m, 0.0));
	}
	assert_plain_rule(0.0);
	assert_plain_rule(-0.0);
	assert_plain_rule(99999999999999.99);
	assert_plain_rule(9999999999999.999);
	assert_plain_rule(1e14);
	assert_plain_rule(nextafter(1e14, 0.0));
	assert_plain_rule(nextafter(1e-4, 0.0));
	assert_plain_rule(1e-4);
	assert_plain_rule(nextafter(1e-4, 1.0));
	assert_plain_rule(0.30000000000000004);
	assert_plain_rule(4503599627370495.5);
	assert_plain_rule(1.0 / 3.0);
}

static json_t *random_value(int depth)
{
	int kind = rand() % (depth > 3 ? 5 : 7);
	switch (kind) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(rand() % 2);
	case 2:
		return json_integer((json_int_t)rand() * (rand() % 2 ? 1 : -1) * rand());
	case 3:
	case 4: {
		char s[12];
		size_t n = (size_t)(rand() % (int)sizeof(s));
		for (size_t i = 0; i < n; i++)
			s[i] = (char)(rand() % 0x7f + 1); /* ASCII, controls included */
		return json_stringn(s, n);
	}
	case 5: {
		json_t *a = json_array();
		for (int i = rand() % 5; i > 0; i--)
			json_array_append_new(a, random_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (int i = rand() % 8; i > 0; i--) {
			char k[4] = {(char)('a' + rand() % 4), (char)('a' + rand() % 4), 0, 0};
			json_object_set_new(o, k, random_value(depth + 1));
		}
		return o;
	}
	}
}

static void test_random_trees(void **state)
{
	(void)state;
	srand(11);
	for (int i = 0; i < 2000; i++) {
		json_t *v = random_value(0);
		assert_same_as_jansson(v);
		json_decref(v);
	}
}

static void test_reals_inside_trees_read_back_equal(void **state)
{
	(void)state;
	json_t *v = json_pack("{s:f, s:[f, f], s:{s:f}}", "lat", 47.562399999999997, "pair", 0.1,
	                      -1e-7, "o", "x", 123456789.125);
	char *text = pl_json_text(v, PL_JSONW_SORTED, NULL);
	assert_string_equal(text,
	                    "{\"lat\":47.5624,\"o\":{\"x\":123456789.125},\"pair\":[0.1,-1e-7]}");
	json_t *back = json_loads(text, 0, NULL);
	assert_true(json_equal(v, back));
	json_decref(back);
	pl_free(text);
	json_decref(v);
}

static void test_depth_limit_and_null(void **state)
{
	(void)state;
	assert_null(pl_json_text(NULL, PL_JSONW_SORTED, NULL));
	json_t *root = json_array(), *cur = root;
	for (int i = 0; i < PL_JSONW_MAX_DEPTH; i++) {
		json_t *next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	char *text =
	    pl_json_text(root, PL_JSONW_SORTED, NULL); /* PL_JSONW_MAX_DEPTH + 1 levels: written */
	assert_non_null(text);
	pl_free(text);
	json_array_append_new(cur, json_array()); /* one more */
	assert_null(pl_json_text(root, PL_JSONW_SORTED, NULL));
	json_decref(root);
}

/* pl_json_integer_text writes what printf's %lld does, the extremes included. */
static void test_integer_text(void **state)
{
	(void)state;
	const int64_t values[] = {0, 1, -1, 9, 10, -10, 1795773600000LL, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char got[24], want[24];
		snprintf(want, sizeof(want), "%lld", (long long)values[i]);
		assert_int_equal(pl_json_integer_text(values[i], got), strlen(want));
		assert_string_equal(got, want);
	}
}

/* The builder is given any bytes (a record's or a request's text): what is not UTF-8 is written
 * as \ufffd, so the text is always JSON, and valid UTF-8 is kept as is. */
static void test_builder_string_any_bytes(void **state)
{
	(void)state;
	pl_jsonw_t w;
	pl_jsonw_init(&w, PL_JSONW_SORTED);
	pl_jsonw_string(&w, "a\xFF\xC3\xA9\xF0\x9F\x9A", 7);
	char *text = pl_jsonw_finish(&w, NULL);
	assert_string_equal(text, "\"a\\ufffd\xC3\xA9\\ufffd\\ufffd\\ufffd\"");
	pl_free(text);
	srand(777);
	for (int round = 0; round < 5000; round++) {
		unsigned char b[64];
		size_t n = (size_t)rand() % sizeof(b);
		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned char)rand();
		pl_jsonw_init(&w, PL_JSONW_SORTED);
		pl_jsonw_string(&w, (const char *)b, n);
		size_t len;
		text = pl_jsonw_finish(&w, &len);
		json_error_t err;
		json_t *back = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		assert_non_null(back);
		assert_true(json_is_string(back));
		json_decref(back);
		pl_free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scalars_and_containers),
	    cmocka_unit_test(test_builder_string_any_bytes),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_key_order),
	    cmocka_unit_test(test_reals),
	    cmocka_unit_test(test_integer_text),
	    cmocka_unit_test(test_random_trees),
	    cmocka_unit_test(test_reals_inside_trees_read_back_equal),
	    cmocka_unit_test(test_depth_limit_and_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
