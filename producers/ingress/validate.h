/* validate.h — the ingress's request validation: parses the JSON body of the
 * three body-carrying routes, checks every field and builds the Avro-ready
 * event object (a jansson object whose field names and types follow the schemas
 * in schemas/; see pipeline/avro.h for the mapping). The event leaves out
 * eventId, deliveryId, requestedAt and idempotencyKey: the route adds them.
 *
 * Body rules, common to all three routes (each failure is a 400 with one error
 * on field "body"): empty (or only whitespace); a NUL byte anywhere;
 * arrays/objects nested deeper than INGRESS_MAX_DEPTH (checked by a scan that
 * tracks depth outside strings BEFORE jansson sees the body, so no body makes
 * anything recurse); not JSON (the detail carries jansson's text, line and
 * column); invalid UTF-8; "\u0000" inside a string; a duplicate key in an
 * object (ambiguous: parsers disagree on which value wins); a number too large
 * for int64/double; a top level that is not an object. A UTF-8 byte-order mark
 * at the start is skipped. Field rules: a client-supplied deliveryId and
 * unknown fields are ignored. An optional field given as JSON null counts as
 * absent; a required one given as null "is required". Lengths count Unicode
 * code points, except confirmationBlob (bytes). Enum spellings are
 * case-sensitive. Every error found is reported, not just the first.
 *
 * Thread rules: the functions keep no state and may run on any number of
 * threads at once; one ingress_problem_t must not be used by two threads at the
 * same time. */
#ifndef INGRESS_VALIDATE_H
#define INGRESS_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "area.h"
#include "err.h"

#define INGRESS_MAX_DEPTH 32
#define INGRESS_ID_MAX                                                                             \
	128                        /* ownerId, packageInfo.packageId, packageInfo.tag              \
	                            */
#define INGRESS_LOCATION_MAX   256 /* pickupLocation, dropOffLocation */
#define INGRESS_DEADLINE_MAX   64  /* deadline: any string up to this, as in the reference */
#define INGRESS_WEIGHT_MAX     100000.0
#define INGRESS_BLOB_MAX_BYTES 49152 /* confirmationBlob: 48 KiB */

/* One thing wrong with the request. */
typedef struct ingress_field_error {
	char *field;  /* dotted path ("packageInfo.size"), or "body" for the body as a
	                 whole */
	char *reason; /* completes "<field> ...": "is required", "must be a string
	                 (got number)" */
} ingress_field_error_t;

/* What the client did wrong, ready for an application/problem+json answer.
 * Invariants: status == 0 <=> error_count == 0 <=> detail == NULL (no problem);
 * error_count <= error_capacity; every string is printable ASCII (safe for any
 * JSON writer). A zero-initialised struct (= {0}) is an empty problem.
 * Everything is pl_malloc'd and owned by the struct; release it with
 * ingress_problem_free. */
typedef struct ingress_problem {
	int status;                    /* 400 after a failed validation, else 0 */
	char *detail;                  /* one sentence for the "detail" member */
	ingress_field_error_t *errors; /* the "errors" member, in the order found */
	size_t error_count;
	size_t error_capacity;
} ingress_problem_t;

/* POST /api/deliveryrequests -> DeliveryRequested fields ownerId,
 * pickupLocation, pickup, dropOffLocation, dropoff, pickupTime, deadline,
 * expedited, confirmationRequired, packageInfo. On PL_OK *event is a new
 * reference (caller json_decref's it) and problem is empty. On PL_ERR_INVALID
 * *event is NULL and problem holds status 400, detail and every error. problem
 * is reset first, so one struct can be reused. body (len bytes, need not be
 * NUL-terminated) is borrowed; body may be NULL when len is 0. */
pl_err_t ingress_validate_create(const char *body, size_t len, json_t **event,
                                 ingress_problem_t *problem);

/* PATCH /api/deliveryrequests/{id} -> DeliveryRescheduleRequested fields
 * pickupLocation, pickup, dropOffLocation, dropoff, pickupTime, deadline (each
 * null when not given; pickup/dropoff are resolved when their location is
 * given). At least one of the four must be given (non-null). Same contract as
 * ingress_validate_create. */
pl_err_t ingress_validate_reschedule(const char *body, size_t len, json_t **event,
                                     ingress_problem_t *problem);

/* POST /api/deliveryrequests/{id}/confirmations -> DeliveryConfirmed fields
 * dateTime, geoCoordinates {latitude, longitude, altitude}, confirmationType,
 * confirmationBlob. Same contract as ingress_validate_create. */
pl_err_t ingress_validate_confirmation(const char *body, size_t len, json_t **event,
                                       ingress_problem_t *problem);

/* The service-area rule (area.h) on an event from ingress_validate_create or
 * ingress_validate_reschedule: each of "pickup" / "dropoff" that is a point
 * must lie inside the area (else an error on field pickupLocation /
 * dropOffLocation naming the limit), and when both are points and inside, the
 * route between them must fit the range (else an error on field "route").
 * A reschedule that gives one location is checked for that location only: the
 * other end is not known here (the scheduler checks the whole rule before it
 * claims a drone). PL_OK, or PL_ERR_INVALID with problem (reset first) holding
 * status 400, the errors and the detail. event and area are borrowed. */
pl_err_t ingress_validate_area(const pl_area_t *area, const json_t *event,
                               ingress_problem_t *problem);

/* Appends an error (printf-style reason) and sets status to 400 if it was 0.
 * For routes that find problems of their own. Bytes outside printable ASCII in
 * field/reason become '?'. */
void ingress_problem_add(ingress_problem_t *problem, const char *field, const char *reason_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replaces the detail sentence (copied, sanitised like ingress_problem_add). */
void ingress_problem_set_detail(ingress_problem_t *problem, const char *detail);

/* The errors as a JSON array text: [{"field":"ownerId","reason":"is required"}]
 * ("[]" when none). Caller frees with pl_free. Never NULL. */
char *ingress_problem_errors_json(const ingress_problem_t *problem);

/* The same array as a new jansson reference (caller json_decref's it). Never
 * NULL. */
json_t *ingress_problem_errors_array(const ingress_problem_t *problem);

/* Empties the problem (status 0, no detail, no errors) but keeps the errors
 * array's capacity for reuse. NULL is a no-op. */
void ingress_problem_reset(ingress_problem_t *problem);

/* Releases everything the problem owns and leaves it zeroed (the struct itself
 * is the caller's). NULL is a no-op. */
void ingress_problem_free(ingress_problem_t *problem);

#endif
