/* store.h — the package store of dronepipe-package: packages kept in a MongoDB-API server
 * (MongoDB or FerretDB), database chosen by the caller (normally "packages"), collection
 * "packages", one document per packageId:
 *
 *   {_id: packageId, ownerId, deliveryId, size: "Small"|"Medium"|"Large", weight: double,
 *    tag: string|null, createdAt: date}
 *
 * deliveryId and createdAt are those of the FIRST command that stored the package; they never
 * change afterwards, so a replay of the command topic rewrites nothing.
 *
 * Conflict rule (package_store_upsert): a packageId names one physical package. Storing it again
 * with the same ownerId, size, weight and tag is a no-op (PL_OK: idempotent, whatever the
 * deliveryId); storing it with ANY of those four different is refused (PL_ERR_REJECTED with a
 * reason naming the first field that differs). deliveryId and createdAt are not compared: a
 * second delivery of the same package (same attributes) is accepted and keeps the first values.
 *
 * Errors: every function that talks to the server returns PL_ERR_TRANSIENT when the server is
 * unreachable or answers with an error (retry later, never dead-letter); the foreign detail is
 * kept for the calling thread in package_store_errmsg(). PL_ERR_INVALID means the caller's input
 * is malformed (empty or over-long id, bad UTF-8, bad size, negative or non-finite weight) and
 * will never succeed. Nothing here logs except mongoc's own messages, which are routed into
 * pl_log (event "mongoc_log").
 *
 * Thread rules: one package_store_t is shared by every thread of the service; all functions
 * are thread-safe (a mongoc client pool, one client per call). package_t is a plain value. */
#ifndef PACKAGE_STORE_H
#define PACKAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Longest ownerId / packageId / deliveryId / tag in bytes (128 characters of up to 4 UTF-8
 * bytes each, the ingress limit). */
#define PACKAGE_STR_MAX 512

typedef enum package_size {
	PACKAGE_SIZE_SMALL = 0,
	PACKAGE_SIZE_MEDIUM,
	PACKAGE_SIZE_LARGE,
	PACKAGE_SIZE__COUNT
} package_size_t;

/* A package. Strings are NUL-terminated UTF-8; invariant: package_id and owner_id non-empty,
 * weight finite and >= 0, tag meaningful only when has_tag. */
typedef struct package {
	char package_id[PACKAGE_STR_MAX + 1];
	char owner_id[PACKAGE_STR_MAX + 1];
	char delivery_id[PACKAGE_STR_MAX + 1]; /* the delivery that first stored it; may be "" */
	bool has_tag;
	char tag[PACKAGE_STR_MAX + 1];
	package_size_t size;
	double weight;
	int64_t created_at_ms; /* epoch ms, UTC; pass the command's requestedAt (deterministic) */
} package_t;

typedef struct package_store package_store_t;

/* "Small", "Medium", "Large" (the Avro enum symbols and API spellings); NULL when out of range. */
const char *package_size_name(package_size_t size);
/* Parses a symbol (case-sensitive); -1 when unknown. */
int package_size_parse(const char *name);

/* Creates the store for uri (e.g. "mongodb://127.0.0.1:27017/") and database db_name. Does not
 * connect: the first call that needs the server does, and a background ping each second while
 * no call runs (package_store_ready). Unless the URI sets them, serverSelectionTimeoutMS and
 * connectTimeoutMS = connect_timeout_ms, socketTimeoutMS = timeout_ms (0: 2000 and 10000), so
 * a down server fails a call in about connect_timeout_ms and a frozen one in timeout_ms.
 * Returns NULL with a message in errstr when the URI or the name is invalid. Not thread-safe
 * against other _new/_destroy calls of this module. */
package_store_t *package_store_new(const char *uri, const char *db_name, int timeout_ms,
                                   int connect_timeout_ms, char *errstr, size_t errstr_size);
/* NULL is a no-op. No call may be running on the store. */
void package_store_destroy(package_store_t *store);

/* Creates the secondary index {ownerId, createdAt} (idempotent). PL_OK or PL_ERR_TRANSIENT. */
pl_err_t package_store_ensure_indexes(package_store_t *store);
/* Round trip to the server ("ping"): PL_OK or PL_ERR_TRANSIENT. */
pl_err_t package_store_ping(package_store_t *store);
/* Readiness from what the store's calls recorded (pipeline/probe.h): the latest call answered
 * (a ping runs each second while no other call does); else false and why. No I/O. */
bool package_store_ready(package_store_t *store, char *reason, size_t reason_size);

/* Stores pkg unless its packageId exists (see the conflict rule above).
 *   PL_OK            stored now, or already stored with the same attributes;
 *   PL_ERR_REJECTED  stored with different attributes: reason (NUL-terminated, truncated to
 *                    reason_size) says which, e.g. "package p1 already exists with tag 'a'";
 *   PL_ERR_INVALID   pkg malformed (reason says why);  PL_ERR_TRANSIENT  server trouble.
 * stored (may be NULL) receives the document as stored on PL_OK and PL_ERR_REJECTED, so the
 * caller can answer with the first createdAt/deliveryId on a replay. reason may be NULL. */
pl_err_t package_store_upsert(package_store_t *store, const package_t *pkg, package_t *stored,
                              char *reason, size_t reason_size);

/* Reads package id into *out. PL_OK, PL_ERR_NOT_FOUND, PL_ERR_INVALID (bad id) or
 * PL_ERR_TRANSIENT. */
pl_err_t package_store_get(package_store_t *store, const char *package_id, package_t *out);

/* Sum of the weights of owner_id's packages whose createdAt lies in year-month (UTC calendar
 * month, start inclusive, end exclusive) into *total (0 when there are none). PL_OK,
 * PL_ERR_INVALID (empty owner, year outside 1..9999, month outside 1..12) or PL_ERR_TRANSIENT. */
pl_err_t package_store_total_weight(package_store_t *store, const char *owner_id, int year,
                                    int month, double *total);

/* Detail of the last failure of a store call on this thread ("" when none). Valid until the
 * thread's next store call. */
const char *package_store_errmsg(void);

#endif
