/* err.h — the one error enum of dronepipe.
 *
 * Every pipeline function that can fail returns a pl_err_t. Foreign error codes (librdkafka,
 * mongoc, hiredis, libmicrohttpd) are translated into it inside their wrapper module.
 * The stage loop acts on it: retryable errors back off and retry the same record; the others
 * dead-letter the record and advance. Leaf module: includes nothing of the project. */
#ifndef PL_ERR_H
#define PL_ERR_H

#include <stdbool.h>

typedef enum pl_err {
	PL_OK = 0,
	PL_ERR_INVALID,    /* caller passed something malformed (permanent) */
	PL_ERR_DECODE,     /* bytes are not a record we can read (poison) */
	PL_ERR_SCHEMA,     /* decoded, but violates the contract (poison) */
	PL_ERR_REJECTED,   /* well-formed, refused by a business rule (permanent) */
	PL_ERR_NOT_FOUND,  /* no such thing */
	PL_ERR_TRANSIENT,  /* a dependency is unavailable for now: try again */
	PL_ERR_TIMEOUT,    /* no answer in time: try again */
	PL_ERR_QUEUE_FULL, /* local queue full: back off and try again */
	PL_ERR_CONFIG,     /* bad configuration (fail fast at start) */
	PL_ERR_IO,         /* operating-system I/O failure */
	PL_ERR_TOO_LARGE,  /* refused for its size (a record over the broker's limit): permanent */
	PL_ERR_FATAL,      /* unrecoverable: the process should exit (code 2) */
	PL_ERR__COUNT
} pl_err_t;

/* Stable snake_case name of the error, e.g. "transient". Never NULL. */
const char *pl_err_str(pl_err_t err);

/* True when the same operation may succeed later without changing its input. */
bool pl_err_retryable(pl_err_t err);

#endif
