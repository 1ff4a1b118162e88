/* test_progress.c — unit tests of the progress lines: durations, the line text (with and
 * without a total, before any rate is known, past the total), and the printing cadence on a
 * terminal (redrawn in place, every 100 ms) and off one (plain lines, every 2 s). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "replay/progress.h"

static void test_duration_format(void **state)
{
	(void)state;
	char b[32];
	ops_format_duration(b, sizeof(b), 0);
	assert_string_equal(b, "0s");
	ops_format_duration(b, sizeof(b), -5);
	assert_string_equal(b, "0s");
	ops_format_duration(b, sizeof(b), 1);
	assert_string_equal(b, "1s"); /* rounded up: "0s left" only when done */
	ops_format_duration(b, sizeof(b), 45000);
	assert_string_equal(b, "45s");
	ops_format_duration(b, sizeof(b), 125000);
	assert_string_equal(b, "2m05s");
	ops_format_duration(b, sizeof(b), 3720000);
	assert_string_equal(b, "1h02m");
	ops_format_duration(b, sizeof(b), 273600000);
	assert_string_equal(b, "3d04h");
	assert_int_equal(ops_format_duration(b, 4, 125000), 3); /* truncated */
	assert_string_equal(b, "2m0");
}

static void test_line(void **state)
{
	(void)state;
	char b[128];
	ops_progress_format(b, sizeof(b), "redrive", 512, 1000, 2000);
	assert_string_equal(b, "redrive: 512/1000 records (51%), 256 rec/s, 2s left");
	ops_progress_format(b, sizeof(b), "redrive", 0, 1000, 0);
	assert_string_equal(b, "redrive: 0/1000 records (0%), - rec/s, - left");
	ops_progress_format(b, sizeof(b), "redrive", 10, 1000, 500); /* < 1 s: no rate yet */
	assert_string_equal(b, "redrive: 10/1000 records (1%), - rec/s, - left");
	ops_progress_format(b, sizeof(b), "redrive", 1000, 1000, 4000);
	assert_string_equal(b, "redrive: 1000/1000 records (100%), 250 rec/s, 0s left");
	ops_progress_format(b, sizeof(b), "scan", 1200, 1000, 1000); /* more than expected */
	assert_string_equal(b, "scan: 1200/1200 records (100%), 1200 rec/s, 0s left");
	ops_progress_format(b, sizeof(b), "scan", 300, 0, 3000);
	assert_string_equal(b, "scan: 300 records, 100 rec/s");
	assert_int_equal(ops_progress_format(b, 8, "scan", 300, 0, 3000), 7);
	assert_string_equal(b, "scan: 3");
}

static char *drain(FILE *f)
{
	static char buf[4096];
	fflush(f);
	long n = ftell(f);
	rewind(f);
	size_t got = fread(buf, 1, (size_t)n < sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 1, f);
	buf[got] = '\0';
	rewind(f);
	if (ftruncate(fileno(f), 0) != 0)
		buf[0] = '\0';
	return buf;
}

static void test_cadence_plain(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	ops_progress_t p;
	ops_progress_init(&p, f, false, "redrive", 100, 1000);
	ops_progress_update(&p, 10, 1500); /* too early */
	assert_string_equal(drain(f), "");
	ops_progress_update(&p, 40, 3000);
	assert_string_equal(drain(f), "redrive: 40/100 records (40%), 20 rec/s, 3s left\n");
	ops_progress_update(&p, 50, 4000); /* 1 s after the last line */
	assert_string_equal(drain(f), "");
	ops_progress_finish(&p, 100, 4000);
	assert_string_equal(drain(f), "redrive: 100/100 records (100%), 33 rec/s, 0s left\n");
	fclose(f);
}

static void test_cadence_tty(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	ops_progress_t p;
	ops_progress_init(&p, f, true, "redrive", 100, 0);
	ops_progress_update(&p, 1, 50);
	assert_string_equal(drain(f), "");
	ops_progress_update(&p, 2, 100);
	assert_string_equal(drain(f), "\rredrive: 2/100 records (2%), - rec/s, - left\033[K");
	assert_true(p.drawn);
	ops_progress_update(&p, 3, 150);
	assert_string_equal(drain(f), "");
	ops_progress_finish(&p, 100, 2000);
	assert_string_equal(drain(f),
	                    "\rredrive: 100/100 records (100%), 50 rec/s, 0s left\033[K\n");
	assert_false(p.drawn);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_format),
	    cmocka_unit_test(test_line),
	    cmocka_unit_test(test_cadence_plain),
	    cmocka_unit_test(test_cadence_tty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
