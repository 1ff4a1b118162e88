/* keys.c — Redis key names of dronepipe-delivery (see keys.h). */
#include <stdio.h>
#include <string.h>

#include "keys.h"

static pl_err_t check_id(const char *what, const char *id, char *errstr, size_t errstr_size)
{
	size_t len = id ? strnlen(id, KEYS_ID_MAX + 1) : 0;
	if (len == 0) {
		snprintf(errstr, errstr_size, "%s is empty", what);
		return PL_ERR_INVALID;
	}
	if (len > KEYS_ID_MAX) {
		snprintf(errstr, errstr_size, "%s is %zu bytes long, over the limit of %d bytes",
		         what, strlen(id), KEYS_ID_MAX);
		return PL_ERR_INVALID;
	}
	return PL_OK;
}

pl_err_t keys_delivery(const char *delivery_id, dlv_keys_t *out, char *errstr, size_t errstr_size)
{
	pl_err_t e = check_id("deliveryId", delivery_id, errstr, errstr_size);
	if (e != PL_OK)
		return e;
	snprintf(out->delivery, sizeof(out->delivery), "dp:dlv:{%s}", delivery_id);
	snprintf(out->history, sizeof(out->history), "dp:dlv:{%s}:history", delivery_id);
	snprintf(out->telemetry, sizeof(out->telemetry), "dp:dlv:{%s}:tm", delivery_id);
	snprintf(out->channel, sizeof(out->channel), KEYS_CHANNEL_PREFIX "%s", delivery_id);
	return PL_OK;
}

pl_err_t keys_summary(const char *owner_id, int year, int month, char out[KEYS_NAME_MAX],
                      char *errstr, size_t errstr_size)
{
	pl_err_t e = check_id("ownerId", owner_id, errstr, errstr_size);
	if (e != PL_OK)
		return e;
	if (year < 0 || year > 9999 || month < 1 || month > 12) {
		snprintf(errstr, errstr_size, "no month %04d-%02d", year, month);
		return PL_ERR_INVALID;
	}
	snprintf(out, KEYS_NAME_MAX, "dp:summary:%04d-%02d:%s", year, month, owner_id);
	return PL_OK;
}
