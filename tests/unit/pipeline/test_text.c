/* test_text.c — unit tests of pipeline/text.c, the sanitising path: by class of input (valid
 * UTF-8 of every length, every way to be invalid, control characters, cuts at every byte
 * offset, random bytes), checking what every consumer of the text relies on: valid UTF-8, no
 * control character, within the buffer, cut only between characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "text.h"

/* What every cleaned text must be, whatever it was given. */
static void assert_safe(const char *t, size_t len, size_t size)
{
	assert_true(len < size);
	assert_int_equal(strlen(t), len);
	assert_true(pl_text_utf8_valid(t, len));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		assert_false(c < 0x20 || c == 0x7F);
	}
}

static void utf8_classes(void **state)
{
	(void)state;
	/* well-formed: 1..4 bytes, the edges of each range */
	const char *good[] = {"a",
	                      "\xC2\x80",
	                      "\xDF\xBF",
	                      "\xE0\xA0\x80",
	                      "\xED\x9F\xBF",
	                      "\xEF\xBF\xBF",
	                      "\xF0\x90\x80\x80",
	                      "\xF4\x8F\xBF\xBF"};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_true(pl_text_utf8_valid(good[i], strlen(good[i])));
	/* ill-formed: lone continuation, overlong 2/3/4-byte, surrogate, above U+10FFFF,
	 * bytes that never occur, truncated sequences */
	const char *bad[] = {"\x80",
	                     "\xBF",
	                     "\xC0\x80",
	                     "\xC1\xBF",
	                     "\xE0\x9F\xBF",
	                     "\xF0\x8F\xBF\xBF",
	                     "\xED\xA0\x80",
	                     "\xED\xBF\xBF",
	                     "\xF4\x90\x80\x80",
	                     "\xF5\x80\x80\x80",
	                     "\xFE",
	                     "\xFF",
	                     "\xC3",
	                     "\xE2\x82",
	                     "\xF0\x9F\x9A"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_false(pl_text_utf8_valid(bad[i], strlen(bad[i])));
		char out[64];
		size_t n = pl_text_clean(out, sizeof(out), bad[i], strlen(bad[i]));
		assert_safe(out, n, sizeof(out));
		assert_non_null(strstr(out, "\xEF\xBF\xBD")); /* replaced, not dropped */
	}
}

static void clean_keeps_valid_text(void **state)
{
	(void)state;
	const char *s = "caf\xC3\xA9 \xE2\x82\xAC 5 \xF0\x9F\x9A\x81 \"q\" \\";
	char out[128];
	size_t n = pl_text_clean(out, sizeof(out), s, strlen(s));
	assert_string_equal(out, s);
	assert_int_equal(n, strlen(s));
}

static void clean_escapes_controls(void **state)
{
	(void)state;
	char out[64];
	size_t n = pl_text_clean(out, sizeof(out), "a\r\nb\0c\x7f", 7);
	assert_string_equal(out, "a\\x0d\\x0ab\\x00c\\x7f");
	assert_safe(out, n, sizeof(out));
}

/* A text of 2-, 3- and 4-byte characters, cleaned into every buffer size: never a partial
 * character, and the cut is marked. */
static void clean_cuts_between_characters(void **state)
{
	(void)state;
	const char *chars[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x9A\x81"};
	for (size_t c = 0; c < 3; c++) {
		char src[400] = "";
		for (int i = 0; i < 80; i++)
			strcat(src, chars[c]);
		size_t len = strlen(src);
		for (size_t size = 1; size <= len + 2; size++) {
			char *out = pl_malloc(size);
			size_t n = pl_text_clean(out, size, src, len);
			assert_safe(out, n, size);
			if (size > len)
				assert_string_equal(out, src);
			else if (size > 4)
				assert_true(n >= 3 && memcmp(out + n - 3, "...", 3) == 0);
			pl_free(out);
		}
	}
}

/* A byte-count cut (snprintf "%.Ns") split a character: in place, it is dropped. */
static void clean_inplace_after_snprintf_cut(void **state)
{
	(void)state;
	char buf[14];
	const char *id = "\xF0\x9F\x9A\x81\xF0\x9F\x9A\x81\xF0\x9F\x9A\x81";
	size_t room = sizeof(buf) - 4; /* as "%.*s" with a byte bound */
	snprintf(buf, sizeof(buf), "id %.*s", (int)room, id);
	assert_false(pl_text_utf8_valid(buf, strlen(buf)));
	size_t n = pl_text_clean_inplace(buf, sizeof(buf));
	assert_safe(buf, n, sizeof(buf));
	assert_string_equal(buf, "id \xF0\x9F\x9A\x81\xF0\x9F\x9A\x81");
	assert_int_equal(pl_text_utf8_cut("ab\xE2\x82", 4), 2);
	assert_int_equal(pl_text_utf8_cut("ab\xE2\x82\xAC", 5), 5);
	assert_int_equal(pl_text_utf8_cut("ab", 2), 2);
	assert_int_equal(pl_text_utf8_cut("", 0), 0);
}

/* Random bytes of every length into random buffer sizes: always safe. */
static void clean_random_bytes(void **state)
{
	(void)state;
	srand(12345);
	for (int round = 0; round < 20000; round++) {
		unsigned char src[96];
		size_t len = (size_t)rand() % sizeof(src);
		for (size_t i = 0; i < len; i++)
			src[i] =
			    (unsigned char)(rand() % 4 == 0 ? 0x80 + rand() % 0x80 : rand() % 256);
		size_t size = 1 + (size_t)rand() % 200;
		char *out = pl_malloc(size);
		size_t n = pl_text_clean(out, size, (const char *)src, len);
		assert_safe(out, n, size);
		pl_free(out);
		char *dup = pl_text_clean_dup((const char *)src, len, 64);
		assert_safe(dup, strlen(dup), 65);
		pl_free(dup);
	}
}

static void clean_edges(void **state)
{
	(void)state;
	char out[4] = "zzz";
	assert_int_equal(pl_text_clean(out, 0, "abc", 3), 0);
	assert_string_equal(out, "zzz"); /* size 0: untouched */
	assert_int_equal(pl_text_clean(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
	assert_int_equal(pl_text_clean(out, sizeof(out), NULL, 5), 0);
	assert_string_equal(out, "");
	char *d = pl_text_clean_dup("", 0, 10);
	assert_string_equal(d, "");
	pl_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(utf8_classes),
	    cmocka_unit_test(clean_keeps_valid_text),
	    cmocka_unit_test(clean_escapes_controls),
	    cmocka_unit_test(clean_cuts_between_characters),
	    cmocka_unit_test(clean_inplace_after_snprintf_cut),
	    cmocka_unit_test(clean_random_bytes),
	    cmocka_unit_test(clean_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
