/* saga.h — the delivery saga of dronepipe-workflow as a pure state machine: (state, input, now)
 * -> (new state, outputs, outcome). No I/O, no Kafka, no clock, no randomness: the caller passes
 * the time, and every output eventId is a UUID v5 of (deliveryId, cause eventId, output index),
 * so applying the same input to the same state always yields the same events with the same ids
 * and versions (a replay after a crash is recognised downstream as a duplicate).
 *
 * The state is a jansson object shaped exactly like the Avro record dronepipe.workflow.SagaState
 * (schemas/SagaState.v1.avsc): the value of the compacted changelog dronedelivery.workflow.state,
 * keyed by deliveryId. NULL stands for "no saga known for this delivery".
 * The transition table (state x input -> outputs, new state) and the rules for unknown and
 * finished sagas are in STATE_MACHINE.md beside this file; saga.c implements exactly that table.
 *
 * How the workflow binary uses it (one stage handler call per input record):
 *   1. r = saga_apply(state_of(deliveryId), event_type, event, now, opts)
 *   2. produce r.state (when != NULL; on a duplicate the current state) to
 *      dronedelivery.workflow.state (key deliveryId); once it is acknowledged, r.outputs in
 *      order, then r.resend (re-emission of earlier outputs, see below); all acknowledged
 *      before the input's offset is stored (pl_stage_produce_after does this). So no command
 *      is ever out whose state was not written: its reply always meets that state.
 *   3. map the outcome: OK/DUPLICATE/IGNORED -> PL_STAGE_OK (log IGNORED with r.reason at info
 *      and count it), RETRY_LATER -> PL_STAGE_RETRY, DEAD -> PL_STAGE_DEAD with r.reason.
 * Crash safety: a state record may be acknowledged while an output of the same input is not
 * (sent yet, or acknowledged).
 * The redelivered input is then a duplicate (its eventId is in seenEventIds), so saga_apply puts
 * the outputs it caused, kept in the state's bounded outbox, into r.resend: they are produced
 * again with the same eventIds and versions, and consumers drop what they already have.
 *
 * Delayed retries (drone assignment): the saga never sleeps and keeps no timers outside its
 * state. saga_next_due_ms(state) says when the saga wants to be woken; the workflow sweeps its
 * restored states every second and calls saga_apply(state, SAGA_INPUT_TIMER, NULL, now) for
 * the due ones. Because the due time lives in the persisted state, a crash, restart or
 * rebalance loses no timer. A timer transition has no input record to redeliver, so the
 * workflow produces its outputs and waits for their acknowledgement before writing the state;
 * after a crash in between, the restored (old) state fires the same timer again and re-emits
 * the same eventIds.
 *
 * Thread rules: every function is reentrant; state and input are only read. */
#ifndef WORKFLOW_SAGA_H
#define WORKFLOW_SAGA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "area.h"

#define SAGA_TOPIC_REQUESTS         "dronedelivery.requests"
#define SAGA_TOPIC_PACKAGE_COMMANDS "dronedelivery.package.commands"
#define SAGA_TOPIC_PACKAGE_EVENTS   "dronedelivery.package.events"
#define SAGA_TOPIC_DRONE_COMMANDS   "dronedelivery.drone.commands"
#define SAGA_TOPIC_DRONE_EVENTS     "dronedelivery.drone.events"
#define SAGA_TOPIC_DELIVERY_EVENTS  "dronedelivery.delivery.events"
#define SAGA_TOPIC_STATE            "dronedelivery.workflow.state"
#define SAGA_STATE_SCHEMA           "SagaState"

/* The input type of a wake-up from saga_next_due_ms (not a Kafka record; input may be NULL). */
#define SAGA_INPUT_TIMER "Timer"

#define SAGA_SEEN_MAX    16 /* input eventIds remembered for dedup (seenEventIds) */
#define SAGA_OUTBOX_MAX  16 /* outputs remembered for re-emission (outbox) */
#define SAGA_MAX_OUTPUTS 4  /* most outputs one input can cause */
#define SAGA_NEVER       INT64_MAX

/* Saga status (SagaState.status). The first five are active, the last three finished. */
typedef enum saga_status {
	SAGA_AWAITING_PACKAGE = 0,  /* Created sent, CreatePackage sent */
	SAGA_AWAITING_DRONE,        /* AssignDrone sent (or a retry is due) */
	SAGA_HEADED_TO_PICKUP,      /* drone assigned and flying to the pickup */
	SAGA_HEADED_TO_DROPOFF,     /* package on board */
	SAGA_AWAITING_CONFIRMATION, /* at the dropoff, confirmationRequired != None */
	SAGA_COMPLETED,
	SAGA_CANCELLED,
	SAGA_FAILED,
	SAGA_STATUS__COUNT
} saga_status_t;

typedef enum saga_outcome {
	SAGA_OK = 0,    /* applied: produce outputs, write state (when non-NULL) */
	SAGA_DUPLICATE, /* eventId already applied: no new outputs, state unchanged */
	SAGA_IGNORED, /* nothing to do by the table (stale, finished saga, ...); reason says why */
	SAGA_RETRY_LATER, /* too early (another topic is behind): handle the record again later */
	SAGA_DEAD         /* the record cannot be applied, ever: dead-letter it with reason */
} saga_outcome_t;

typedef struct saga_opts {
	int64_t assign_timeout_ms;     /* DP_WORKFLOW_ASSIGN_TIMEOUT_S: from the first AssignDrone
	                                * to Failed; > 0 */
	int64_t assign_backoff_min_ms; /* delay before the 2nd attempt; doubles per attempt */
	int64_t assign_backoff_max_ms; /* cap of that delay (plus up to 20% jitter) */
	double drone_speed_mps;        /* cruise speed for ETAs; <= 0: no ETAs */
	const pl_area_t *area;         /* DP_SERVICE_AREA, DP_DRONE_RANGE_M: a reschedule whose new
	                                * points break the rule is IGNORED; NULL: not checked */
} saga_opts_t;

/* One event to produce. topic and schema are static strings; event is owned by the result. */
typedef struct saga_output {
	const char *topic;
	const char *schema; /* short Avro name, also the event_type header */
	char event_id[37];  /* = event.eventId, for the event_id header */
	json_t *event;
} saga_output_t;

/* Invariants: state != NULL only when outcome == SAGA_OK and a saga exists afterwards;
 * output_count == 0 unless outcome == SAGA_OK; resend_count > 0 only for SAGA_DUPLICATE;
 * reason is "" for a plain SAGA_OK and says why for every other outcome (and for compensations). */
typedef struct saga_result {
	saga_outcome_t outcome;
	json_t *state; /* new SagaState (owned), or NULL: nothing to write */
	saga_output_t outputs[SAGA_MAX_OUTPUTS];
	size_t output_count;
	saga_output_t resend[SAGA_OUTBOX_MAX];
	size_t resend_count;
	char reason[256];
} saga_result_t;

/* Applies one input to a saga. state: the current SagaState or NULL when none is known
 * (borrowed, never modified). input_type: the record's event_type (the Avro short name, e.g.
 * "DroneAssigned") or SAGA_INPUT_TIMER. input: the decoded event (borrowed; NULL for a timer).
 * now_ms: the wall clock. out is overwritten (call saga_result_clear after use). Never fails:
 * malformed inputs come back as SAGA_DEAD with a reason. */
void saga_apply(const json_t *state, const char *input_type, const json_t *input, int64_t now_ms,
                const saga_opts_t *opts, saga_result_t *out);

/* The outputs a state's outbox keeps for cause (an input's eventId, or a timer's cause: the
 * state's eventId after a timer transition), oldest first, at most max, into out (each event
 * owned by the caller: json_decref it). Returns the count. */
size_t saga_outbox(const json_t *state, const char *cause, saga_output_t *out, size_t max);

/* Releases what a result owns; leaves it zeroed. NULL is a no-op. */
void saga_result_clear(saga_result_t *out);

/* The stand-in of a finished saga whose outbox is empty, for a caller that keeps only its
 * status and seenEventIds (settled.h): { deliveryId, status, finished, seenEventIds = [],
 * outbox = [] }. Contract: for any input whose eventId is not among the saga's seenEventIds,
 * saga_apply on it gives the same outcome, outputs (ids included) and reason as on the whole
 * state, because the table's finished column reads nothing else (test_saga checks every input).
 * Its result state is not the saga's: the caller writes none. NULL when status is not a
 * finished one. Caller decrefs. */
json_t *saga_settled_state(const char *delivery_id, saga_status_t status);

/* When the saga wants a SAGA_INPUT_TIMER (epoch ms), or SAGA_NEVER. */
int64_t saga_next_due_ms(const json_t *state, const saga_opts_t *opts);

/* Status of a SagaState; SAGA_STATUS__COUNT when state is NULL or has no valid status. */
saga_status_t saga_status(const json_t *state);
bool saga_status_finished(saga_status_t status);

/* Stable names (SagaState.status symbols; outcome names are snake_case for logs and metrics). */
const char *saga_status_name(saga_status_t status);
const char *saga_outcome_name(saga_outcome_t outcome);

/* Every schema short name saga_apply may emit, NULL-terminated (for start-up checks). */
extern const char *const saga_output_schemas[];

#endif
