/* test_timefmt.c — pl_time_parse / pl_time_format: offsets, fractions, calendar
 * ranges (leap years), rejected shapes, the 0000..9999 range and round trips.
 * Expected epoch values were computed with Python's datetime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "timefmt.h"

#define T_2026_11_27_10Z 1795773600000LL /* 2026-11-27T10:00:00Z */

static int64_t parse_ok(const char *text)
{
	int64_t ms = 0;
	if (pl_time_parse(text, &ms) != PL_OK)
		fail_msg("rejected \"%s\"", text);
	return ms;
}

static void assert_rejected(const char *text)
{
	int64_t ms = 42;
	if (pl_time_parse(text, &ms) != PL_ERR_INVALID)
		fail_msg("accepted \"%s\"", text);
	assert_true(ms == 42);
}

static void test_utc_and_offsets(void **state)
{
	(void)state;
	assert_true(parse_ok("2026-11-27T10:00:00Z") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27t10:00:00z") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27 10:00:00Z") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T15:30:00+05:30") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T15:30:00+0530") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T02:00:00-08:00") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T02:00:00-0800") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T10:00:00+00:00") == T_2026_11_27_10Z);
	assert_true(parse_ok("2026-11-27T10:00:00-00:00") == T_2026_11_27_10Z);
	/* an offset that crosses midnight and the year */
	assert_true(parse_ok("2027-01-01T05:00:00+23:59") == 1798693260000LL);
	assert_true(parse_ok("2026-11-26T23:00:00-11:00") == T_2026_11_27_10Z);
}

static void test_fractional_seconds(void **state)
{
	(void)state;
	assert_true(parse_ok("2026-11-27T10:00:00.1Z") == T_2026_11_27_10Z + 100);
	assert_true(parse_ok("2026-11-27T10:00:00.12Z") == T_2026_11_27_10Z + 120);
	assert_true(parse_ok("2026-11-27T10:00:00.123Z") == T_2026_11_27_10Z + 123);
	assert_true(parse_ok("2026-11-27T10:00:00.123999999Z") == T_2026_11_27_10Z + 123);
	assert_true(parse_ok("2026-11-27T10:00:00,5Z") == T_2026_11_27_10Z + 500);
	assert_true(parse_ok("2026-11-27T15:30:00.000000000000000000000001+05:30") ==
	            T_2026_11_27_10Z);
	assert_rejected("2026-11-27T10:00:00.Z");
	assert_rejected("2026-11-27T10:00:00.5x");
}

static void test_leap_years(void **state)
{
	(void)state;
	assert_true(parse_ok("2024-02-29T00:00:00Z") == 1709164800000LL);
	assert_true(parse_ok("2000-02-29T00:00:00Z") == 951782400000LL);
	assert_rejected("2023-02-29T00:00:00Z");
	assert_rejected("1900-02-29T00:00:00Z");
	assert_rejected("2024-02-30T00:00:00Z");
	assert_true(parse_ok("2023-02-28T23:59:59.999Z") + 1 == parse_ok("2023-03-01T00:00:00Z"));
	assert_true(parse_ok("2000-03-01T00:00:00Z") == 11017LL * 86400000);
}

static void test_field_ranges(void **state)
{
	(void)state;
	assert_rejected("2026-13-01T00:00:00Z");
	assert_rejected("2026-00-01T00:00:00Z");
	assert_rejected("2026-01-00T00:00:00Z");
	assert_rejected("2026-01-32T00:00:00Z");
	assert_rejected("2026-04-31T00:00:00Z");
	assert_rejected("2026-11-27T24:00:00Z");
	assert_rejected("2026-11-27T10:60:00Z");
	assert_rejected("2026-11-27T10:00:61Z");
	assert_rejected("2026-11-27T10:00:00+24:00");
	assert_rejected("2026-11-27T10:00:00+05:60");
	assert_true(parse_ok("2026-12-31T23:59:59Z") + 1000 == parse_ok("2027-01-01T00:00:00Z"));
	/* a leap second counts as the first second of the next minute */
	assert_true(parse_ok("2026-11-27T10:00:60Z") == parse_ok("2026-11-27T10:01:00Z"));
	assert_true(parse_ok("2026-11-27T10:01:00Z") == 1795773660000LL);
}

static void test_rejected_shapes(void **state)
{
	(void)state;
	const char *bad[] = {"",
	                     "2026-11-27",            /* date only: rejected by design */
	                     "2026-11-27T10:00:00",   /* no offset */
	                     "2026-11-27T10:00Z",     /* no seconds */
	                     "2026-11-27T10:00:00ZZ", /* trailing text */
	                     " 2026-11-27T10:00:00Z", /* leading space */
	                     "2026-11-27T10:00:00Z ",
	                     "26-11-27T10:00:00Z",
	                     "2026-1-27T10:00:00Z",
	                     "2026/11/27T10:00:00Z",
	                     "2026-11-27X10:00:00Z",
	                     "2026-11-27T10:00:00+5:30",
	                     "2026-11-27T10:00:00+05:3",
	                     "2026-11-27T10:00:00+05:30:00",
	                     "2026-11-27T10:00:00 UTC",
	                     "+2026-11-27T10:00:00Z",
	                     "tomorrow",
	                     "1795773600000",
	                     "2026-11-27T1O:00:00Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected(bad[i]);
	int64_t ms;
	assert_int_equal(pl_time_parse(NULL, &ms), PL_ERR_INVALID);
}

static void test_year_range(void **state)
{
	(void)state;
	assert_true(parse_ok("0000-01-01T00:00:00Z") == PL_TIME_MIN_MS);
	assert_true(parse_ok("0001-01-01T00:00:00Z") == -62135596800000LL);
	assert_true(parse_ok("9999-12-31T23:59:59.999Z") == PL_TIME_MAX_MS);
	assert_true(parse_ok("1969-12-31T23:59:59.999Z") == -1);
	assert_rejected("0000-01-01T00:00:00+00:01"); /* before year 0 in UTC */
	assert_rejected("9999-12-31T23:59:59-00:01"); /* after 9999 in UTC */
	assert_rejected("9999-12-31T23:59:60Z");
}

static void assert_format(int64_t ms, const char *want)
{
	char out[32] = "x";
	assert_int_equal(pl_time_format(ms, out), PL_OK);
	assert_string_equal(out, want);
}

static void test_format(void **state)
{
	(void)state;
	assert_format(0, "1970-01-01T00:00:00.000Z");
	assert_format(-1, "1969-12-31T23:59:59.999Z");
	assert_format(T_2026_11_27_10Z + 123, "2026-11-27T10:00:00.123Z");
	assert_format(1709164800000LL, "2024-02-29T00:00:00.000Z");
	assert_format(PL_TIME_MAX_MS, "9999-12-31T23:59:59.999Z");
	assert_format(PL_TIME_MIN_MS, "0000-01-01T00:00:00.000Z");
	char out[32] = "x";
	assert_int_equal(pl_time_format(PL_TIME_MAX_MS + 1, out), PL_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(pl_time_format(PL_TIME_MIN_MS - 1, out), PL_ERR_INVALID);
	assert_int_equal(pl_time_format(INT64_MIN, out), PL_ERR_INVALID);
	assert_int_equal(pl_time_format(INT64_MAX, out), PL_ERR_INVALID);
}

static void test_round_trip(void **state)
{
	(void)state;
	/* a deterministic walk over the whole range, plus every day around 1970 and
	 * 2000 */
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t ms =
		    PL_TIME_MIN_MS + (int64_t)(x % (uint64_t)(PL_TIME_MAX_MS - PL_TIME_MIN_MS + 1));
		if (i < 20000)
			ms = (int64_t)(i - 10000) * 86400000 + i;
		else if (i < 40000)
			ms = 946684800000LL + (int64_t)(i - 30000) * 86399999;
		char out[32];
		assert_int_equal(pl_time_format(ms, out), PL_OK);
		int64_t back = 0;
		assert_int_equal(pl_time_parse(out, &back), PL_OK);
		if (back != ms)
			fail_msg("%lld -> %s -> %lld", (long long)ms, out, (long long)back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utc_and_offsets), cmocka_unit_test(test_fractional_seconds),
	    cmocka_unit_test(test_leap_years),      cmocka_unit_test(test_field_ranges),
	    cmocka_unit_test(test_rejected_shapes), cmocka_unit_test(test_year_range),
	    cmocka_unit_test(test_format),          cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests_name("pipeline/timefmt", tests, NULL, NULL);
}
