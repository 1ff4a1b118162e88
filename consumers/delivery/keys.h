/* keys.h — every Redis key and channel name of dronepipe-delivery, built here and nowhere else.
 *
 *   dp:dlv:{<deliveryId>}             hash: the latest lifecycle event (store.h)
 *   dp:dlv:{<deliveryId>}:history     list: history entries
 *   dp:dlv:{<deliveryId>}:tm          hash: latest telemetry
 *   dp:summary:<YYYY-MM>:<ownerId>    set: the owner's deliveryIds of that month
 *   dp:dlv-events:<deliveryId>        pub/sub channel of the delivery's changes
 *
 * The id part (a deliveryId or an ownerId) is 1..KEYS_ID_MAX bytes. A longer one is refused,
 * never cut: two ids sharing their first KEYS_ID_MAX bytes would otherwise share keys, and the
 * record of one would overwrite the other's. Every name fits in KEYS_NAME_MAX bytes with its NUL.
 * PURE: no I/O, no globals; thread-safe. */
#ifndef DELIVERY_KEYS_H
#define DELIVERY_KEYS_H

#include <stddef.h>

#include "err.h"

/* 128 characters of up to 4 UTF-8 bytes: the ingress's limit on an id. */
#define KEYS_ID_MAX         512
#define KEYS_NAME_MAX       (KEYS_ID_MAX + 32)
#define KEYS_CHANNEL_PREFIX "dp:dlv-events:"

/* The names of one delivery's keys and channel. */
typedef struct dlv_keys {
	char delivery[KEYS_NAME_MAX], history[KEYS_NAME_MAX], telemetry[KEYS_NAME_MAX],
	    channel[KEYS_NAME_MAX];
} dlv_keys_t;

/* Fills out for delivery_id. PL_ERR_INVALID with the reason in errstr (naming the length and
 * the limit) when the id is empty or longer than KEYS_ID_MAX bytes; out is then unusable. */
pl_err_t keys_delivery(const char *delivery_id, dlv_keys_t *out, char *errstr, size_t errstr_size);
/* The summary set of owner_id's deliveries requested in year-month (UTC); the same refusals as
 * keys_delivery for the ownerId. */
pl_err_t keys_summary(const char *owner_id, int year, int month, char out[KEYS_NAME_MAX],
                      char *errstr, size_t errstr_size);

#endif
