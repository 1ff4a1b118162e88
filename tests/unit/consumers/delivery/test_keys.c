/* test_keys.c — keys: every Redis name of a delivery from one place; an id part over
 * KEYS_ID_MAX bytes (or empty) refused with its length and the limit, never cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/keys.h"

static void test_names(void **state)
{
	(void)state;
	dlv_keys_t k;
	char err[128], sum[KEYS_NAME_MAX];
	assert_int_equal(keys_delivery("d-1", &k, err, sizeof(err)), PL_OK);
	assert_string_equal(k.delivery, "dp:dlv:{d-1}");
	assert_string_equal(k.history, "dp:dlv:{d-1}:history");
	assert_string_equal(k.telemetry, "dp:dlv:{d-1}:tm");
	assert_string_equal(k.channel, "dp:dlv-events:d-1");
	assert_int_equal(keys_summary("o-1", 2026, 3, sum, err, sizeof(err)), PL_OK);
	assert_string_equal(sum, "dp:summary:2026-03:o-1");
}

static void test_limit(void **state)
{
	(void)state;
	dlv_keys_t k;
	char err[128], sum[KEYS_NAME_MAX], id[KEYS_ID_MAX + 2];
	memset(id, 'x', KEYS_ID_MAX);
	id[KEYS_ID_MAX] = '\0';
	assert_int_equal(keys_delivery(id, &k, err, sizeof(err)), PL_OK);
	assert_int_equal(strlen(k.history), strlen("dp:dlv:{}:history") + KEYS_ID_MAX);
	assert_int_equal(strlen(k.channel), strlen(KEYS_CHANNEL_PREFIX) + KEYS_ID_MAX);
	assert_int_equal(keys_summary(id, 9999, 12, sum, err, sizeof(err)), PL_OK);
	assert_int_equal(strlen(sum), strlen("dp:summary:9999-12:") + KEYS_ID_MAX);
	id[KEYS_ID_MAX] = 'x';
	id[KEYS_ID_MAX + 1] = '\0';
	assert_int_equal(keys_delivery(id, &k, err, sizeof(err)), PL_ERR_INVALID);
	assert_string_equal(err, "deliveryId is 513 bytes long, over the limit of 512 bytes");
	assert_int_equal(keys_summary(id, 2026, 1, sum, err, sizeof(err)), PL_ERR_INVALID);
	assert_string_equal(err, "ownerId is 513 bytes long, over the limit of 512 bytes");
	assert_int_equal(keys_delivery("", &k, err, sizeof(err)), PL_ERR_INVALID);
	assert_string_equal(err, "deliveryId is empty");
	assert_int_equal(keys_delivery(NULL, &k, err, sizeof(err)), PL_ERR_INVALID);
	assert_int_equal(keys_summary("o", 2026, 13, sum, err, sizeof(err)), PL_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
