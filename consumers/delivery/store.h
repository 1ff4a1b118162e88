/* store.h — dronepipe-delivery's Redis store: idempotent apply of lifecycle events and drone
 * telemetry, reads for the HTTP routes, and a change subscription for live streams. The only
 * module that includes hiredis; hiredis errors become pl_err_t here (connection, timeout and
 * "try again" replies -> PL_ERR_TRANSIENT).
 *
 * Key layout (names built by keys.h only; one logical Redis database; {id} is the deliveryId
 * inside a hash tag, so a delivery's keys share a cluster slot):
 *   dp:dlv:{<id>}           hash  version   highest applied DeliveryLifecycle version
 *                                 eventId   its eventId
 *                                 stage     its stage name
 *                                 event     the event itself (JSON: the full snapshot)
 *   dp:dlv:{<id>}:history   list  one JSON entry per applied lifecycle event, in version order
 *                                 (status_history_entry); the latest history_max entries are
 *                                 kept, older ones dropped
 *   dp:dlv:{<id>}:tm        hash  latest telemetry: seq, time (ms), updatedAt (ISO-8601), latitude,
 *                                 longitude, altitude, speedMps, phase, droneId, eventId
 *   dp:summary:<YYYY-MM>:<ownerId>  set of deliveryIds the owner requested that month (UTC month
 *                                 of the Created event's requestedAt); the summary count = SCARD.
 *                                 A set counts each delivery once whatever happens.
 *   channel dp:dlv-events:<id>    "lifecycle <version>" / "telemetry <seq>": the delivery
 *                                 changed (once per script call that changed it, naming its
 *                                 last change).
 * Every value derives from event content only (no clock, no consumer position), so replaying the
 * topics into an empty database rebuilds byte-identical keys.
 *
 * Expiry: every key of a delivery expires at once, retention after its latest update's time
 * (the event's own time, not when it was applied; a time in the future counts as now), so a
 * replay rebuilds the same expiry too. The summary set expires retention after the latest
 * Created event added to it. A record whose time is retention or more in the past is not
 * applied (the outcome "expired"): its delivery has expired or is about to, and since nothing
 * of it is stored any more, the "newer than stored" rule would otherwise bring it back, in part
 * (a late telemetry record, or the last events of a replay without the first ones).
 *
 * Idempotent apply, in one Lua script (SCRIPT LOAD at connect, EVALSHA, reloaded on NOSCRIPT)
 * that takes a batch of records in order, each atomic:
 *   lifecycle: if version > stored version: write the hash, RPUSH the history entry (and
 *              LTRIM it to history_max), SADD the summary set when stage = Created. Else
 *              nothing (duplicate, replay, or a re-emitted event: versions are never reused).
 *   telemetry: if seq > stored seq and time >= stored time: write the hash. Else
 *              nothing (older than the stored position, or a duplicate).
 * Then one PUBLISH per changed delivery. A record whose command fails stops the script there,
 * so no later record of the batch takes effect before it; the batch is one round trip instead
 * of one per record.
 * The summary set lives outside the delivery's slot, so the scripts need one Redis node (not a
 * cluster).
 *
 * URL: redis://[[user]:password@]host[:port][/db] (port 6379, db 0 by default).
 *
 * Thread rules: every function is thread-safe. Connections come from a small locked pool (the
 * stage thread writes while HTTP threads read); a connection that failed is dropped and the next
 * call reconnects, so Redis coming back needs no restart. The subscription runs on its own thread
 * with its own connection. Ownership: json results are new references for the caller. */
#ifndef DELIVERY_STORE_H
#define DELIVERY_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct dlv_store dlv_store_t;

typedef struct dlv_store_opts {
	const char *url;
	unsigned pool_size;  /* connections at most (>= 1) */
	int timeout_ms;      /* connect and command timeout */
	int64_t retention_s; /* a delivery's keys expire this long after its latest update */
	long history_max;    /* history entries kept per delivery (the latest) */
} dlv_store_opts_t;

/* Parses the URL (NULL and the reason in errstr on a bad one); connects only from a background
 * ping (store_ready) and the first call, so the service starts while Redis is down. */
dlv_store_t *store_new(const dlv_store_opts_t *opts, char *errstr, size_t errstr_size);
/* Stops the subscription, closes every connection. NULL is a no-op. */
void store_destroy(dlv_store_t *store);

/* One record to apply, its fields read by the caller (strings borrowed until store_apply
 * returns; NULL when absent): in the fields of its kind, out err, applied, errstr. */
typedef struct store_op {
	bool telemetry;          /* a DroneTelemetry record, else a DeliveryLifecycle event */
	const char *delivery_id; /* both */
	const char *event_id;    /* both (telemetry: may be NULL) */
	/* lifecycle */
	const char *stage, *owner_id;
	int64_t version, requested_at; /* requestedAt: ms since the epoch (summary month) */
	/* both: time (ms since the epoch) of the event, for its expiry */
	const char *event_json; /* the event as JSON text (the full snapshot) */
	const char *entry_json; /* its history entry (status_history_entry) */
	int64_t time;
	/* telemetry */
	int64_t seq;
	double latitude, longitude, altitude, speed_mps;
	const char *phase, *drone_id; /* may be NULL */
	/* out */
	pl_err_t err; /* PL_OK: the record ran, applied says whether it was newer */
	bool applied;
	bool expired;     /* not applied: its time is retention or more in the past */
	char errstr[256]; /* why, when err != PL_OK */
} store_op_t;

/* Applies ops[0..n) in order, one round trip when nothing fails. Each op gets err:
 *   PL_OK             applied = it was newer than the stored state; expired = too old;
 *   PL_ERR_SCHEMA     it lacks a field the store needs (nothing written);
 *   PL_ERR_INVALID    its deliveryId or ownerId is empty or over KEYS_ID_MAX bytes (keys.h);
 *   PL_ERR_REJECTED   Redis refused it (e.g. WRONGTYPE); the ops after it still run;
 *   PL_ERR_TRANSIENT  Redis unreachable, busy or out of memory (errstr names it: "redis: OOM
 *                     command not allowed ..."): this op and every later one are to be applied
 *                     again. The script runs records in order, so what may have run of them
 *                     before a connection broke off is a prefix: applying it again changes
 *                     nothing. */
void store_apply(dlv_store_t *store, store_op_t *ops, size_t n);

/* The delivery's stored snapshot and latest telemetry (*telemetry = NULL when none).
 * PL_ERR_NOT_FOUND when no lifecycle event of the delivery was applied. */
pl_err_t store_get(dlv_store_t *store, const char *delivery_id, json_t **lifecycle,
                   json_t **telemetry, char *errstr, size_t errstr_size);
/* The history entries in order (a JSON array); PL_ERR_NOT_FOUND when empty. */
pl_err_t store_history(dlv_store_t *store, const char *delivery_id, json_t **entries, char *errstr,
                       size_t errstr_size);
/* Deliveries of owner_id requested in that UTC month (PL_ERR_INVALID for an ownerId no key can
 * have). A delivery over KEYS_ID_MAX bytes is PL_ERR_NOT_FOUND in every read. */
pl_err_t store_summary(dlv_store_t *store, const char *owner_id, int year, int month,
                       long long *count, char *errstr, size_t errstr_size);
/* PL_OK when Redis answers PING. */
pl_err_t store_ping(dlv_store_t *store, char *errstr, size_t errstr_size);
/* Readiness from what the calls recorded (probe.h): Redis answered the latest call (a ping runs
 * each second while no other call does) and accepted the latest write; else false and why.
 * No I/O: never waits on Redis. */
bool store_ready(dlv_store_t *store, char *reason, size_t reason_size);

/* Change notifications. fn runs on the subscription thread with the deliveryId of a change, or
 * with NULL after the subscription (re)connected (changes may have been missed: refresh all).
 * Starts the thread; it reconnects by itself. */
typedef void (*store_change_fn)(const char *delivery_id, void *arg);
pl_err_t store_subscribe(dlv_store_t *store, store_change_fn fn, void *arg, char *errstr,
                         size_t errstr_size);

#endif
