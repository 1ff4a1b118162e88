/* mongo.h — mongoc glue shared by the MongoDB-API store wrappers (the package store, the fleet):
 * one-time driver set-up with mongoc's logs routed into pl_log, a client pool for a URI with
 * dronepipe's default timeouts, and error classification. It exposes mongoc types, so only store
 * wrappers include it (STYLE: mongoc stays in the Mongo stores).
 * Thread rules: every function is thread-safe; pools are mongoc's (thread-safe). */
#ifndef PL_MONGO_H
#define PL_MONGO_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>

/* A pool for uri_text. Unless the URI sets them: serverSelectionTimeoutMS and connectTimeoutMS
 * = connect_timeout_ms (2000 when 0), socketTimeoutMS = socket_timeout_ms (10000 when 0): a
 * down server fails a call in about connect_timeout_ms, one that stops answering in about
 * socket_timeout_ms; and appname. db_name is checked too (non-empty, <= 63 bytes, none of / \ .
 * space " $). On success *uri_out (caller destroys after the pool) and the pool are returned; on
 * failure NULL with the reason in errstr. */
mongoc_client_pool_t *pl_mongo_pool_new(const char *uri_text, const char *db_name,
                                        const char *appname, int socket_timeout_ms,
                                        int connect_timeout_ms, mongoc_uri_t **uri_out,
                                        char *errstr, size_t errstr_size);

/* Round trip to the server ("ping" on admin) with a client of pool; false with error filled when
 * the server is unreachable or refuses. */
bool pl_mongo_ping(mongoc_client_pool_t *pool, bson_error_t *error);

/* A duplicate-key error (the outcome of losing a unique-insert race). */
bool pl_mongo_is_duplicate_key(const bson_error_t *error);

#endif
