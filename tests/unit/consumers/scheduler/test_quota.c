/* test_quota.c — the scheduler's per-owner in-flight limit (consumers/scheduler/quota.c), no
 * server: the decision at, under and over the limit, 0 as "no limit", and the refusal reason
 * with the owner's id shown safely whatever its bytes (invalid UTF-8, control characters, huge,
 * empty) and cut between characters when the buffer is small. The count it is applied to and
 * the refusal end to end are in tests/it/test_quota.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scheduler/quota.h"
#include "text.h"

static void test_decision(void **state)
{
	(void)state;
	assert_false(quota_exceeded(3, 0));
	assert_false(quota_exceeded(3, 2));
	assert_true(quota_exceeded(3, 3));  /* at the limit: no further drone */
	assert_true(quota_exceeded(3, 50)); /* over it (the limit was lowered, or replicas raced) */
	assert_true(quota_exceeded(1, 1));
	assert_false(quota_exceeded(1, 0));
	/* 0 = no limit */
	assert_false(quota_exceeded(0, 0));
	assert_false(quota_exceeded(0, SIZE_MAX));
	assert_true(quota_exceeded(QUOTA_MAX, SIZE_MAX));
	assert_false(quota_exceeded(QUOTA_MAX, QUOTA_MAX - 1));
}

static void test_reason_plain(void **state)
{
	char why[320];
	(void)state;
	size_t n = quota_reason(why, sizeof why, "owner-7", 3, 3);
	assert_string_equal(why, "owner owner-7 already has 3 deliveries in flight (limit 3)");
	assert_int_equal(n, strlen(why));
	quota_reason(why, sizeof why, "o", 120, 100);
	assert_string_equal(why, "owner o already has 120 deliveries in flight (limit 100)");
	quota_reason(why, sizeof why, NULL, 1, 1);
	assert_string_equal(why, "owner  already has 1 deliveries in flight (limit 1)");
}

/* Every class of hostile owner id gives valid UTF-8 without control characters, bounded, that
 * still carries the counts and the limit. */
static void test_reason_hostile_owner(void **state)
{
	char huge[5000], why[320];
	(void)state;
	memset(huge, 'a', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	const char *owners[] = {
	    "",
	    "\xff\xfe bad bytes \xc3",           /* invalid UTF-8, a sequence cut at the end */
	    "line\r\nX-Injected: 1\x1b[31m\x7f", /* control characters */
	    "\xed\xa0\x80 surrogate, \xc0\xaf overlong", /* malformed forms */
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x81", /* valid multi-byte text */
	    huge,
	};
	for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
		size_t n = quota_reason(why, sizeof why, owners[i], 4, 3);
		assert_int_equal(n, strlen(why));
		assert_true(pl_text_utf8_valid(why, n));
		for (size_t k = 0; k < n; k++)
			assert_false((unsigned char)why[k] < 0x20 || why[k] == 0x7f);
		assert_non_null(strstr(why, " already has 4 deliveries in flight (limit 3)"));
		assert_int_equal(strncmp(why, "owner ", 6), 0);
		assert_true(n < PL_TEXT_SHOWN + 64); /* the id is bounded */
	}
	quota_reason(why, sizeof why, owners[4], 4, 3);
	assert_non_null(strstr(why, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x81")); /* kept as is */
	quota_reason(why, sizeof why, owners[2], 4, 3);
	assert_non_null(strstr(why, "line\\x0d\\x0aX-Injected: 1\\x1b[31m\\x7f"));
	quota_reason(why, sizeof why, huge, 4, 3);
	assert_non_null(strstr(why, "a... already has")); /* cut with the mark */
}

/* A buffer too small for the reason: cut between characters, still terminated and valid. */
static void test_reason_small_buffer(void **state)
{
	char why[16];
	(void)state;
	for (size_t size = 1; size <= sizeof why; size++) {
		memset(why, 'z', sizeof why);
		size_t n = quota_reason(why, size, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 3);
		assert_true(n < size);
		assert_int_equal(n, strlen(why));
		assert_true(pl_text_utf8_valid(why, n));
	}
	assert_int_equal(quota_reason(why, 0, "x", 1, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decision),
	    cmocka_unit_test(test_reason_plain),
	    cmocka_unit_test(test_reason_hostile_owner),
	    cmocka_unit_test(test_reason_small_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
