/* probe.h — a store's health for /readyz, as the store's own calls record it, so that /readyz
 * and /healthz never wait on the store: a request only reads what the last calls left.
 *
 * Two records, each "the last outcome, when, and since when it has been failing":
 *   calls   every round trip to the store (reads, writes, pings): did it answer?
 *   writes  the last write the service tried: did the store accept it? A store that answers
 *           reads but refuses writes (Redis out of memory) is not ready, and a successful read
 *           must not hide that; the next write that succeeds clears it.
 * A thread calls the store's ping when no call has been recorded for idle_ms, so an idle service
 * notices a store that went away (the ping records its outcome like any other call).
 *
 * Not ready when: no call has answered yet; the last call failed; the last write failed; or no
 * call has answered for stale_ms (a call that hangs past every timeout). The reason names the
 * dependency, the error and since when, e.g.
 *   "Redis: redis: Connection timed out (failing since 2026-12-08T01:40:00.000Z, 3 s)".
 *
 * Thread rules: every function is thread-safe. Ownership: the probe copies what it is given. */
#ifndef PL_PROBE_H
#define PL_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pl_probe pl_probe_t;

typedef enum pl_probe_record {
	PL_PROBE_CALLS = 0,
	PL_PROBE_WRITES,
	PL_PROBE__COUNT
} pl_probe_record_t;

/* One cheap round trip to the store (it records its own outcome through pl_probe_note). */
typedef void (*pl_probe_ping_fn)(void *arg);

/* dependency: its name in reasons ("Redis", "FerretDB"). idle_ms: the ping runs when no call was
 * recorded for that long; stale_ms: older than that, the last answer does not count. */
pl_probe_t *pl_probe_new(const char *dependency, int64_t idle_ms, int64_t stale_ms);
/* Starts the ping thread (optional; without it only the store's own calls are recorded). */
void pl_probe_start(pl_probe_t *probe, pl_probe_ping_fn ping, void *arg);
/* Stops the thread (waits for a ping in progress). NULL is a no-op. */
void pl_probe_destroy(pl_probe_t *probe);

/* Records one outcome: ok, or the error text (err may be NULL). A failed write is also a call
 * that answered unless the caller notes the call as failed too. NULL probe is a no-op. */
void pl_probe_note(pl_probe_t *probe, pl_probe_record_t record, bool ok, const char *err);

/* True when ready; else false with the reason. No I/O: reads the records only. */
bool pl_probe_ready(pl_probe_t *probe, char *reason, size_t reason_size);

#endif
