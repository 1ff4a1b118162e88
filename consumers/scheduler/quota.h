/* quota.h — the per-owner limit of deliveries in flight (DP_OWNER_MAX_IN_FLIGHT): the decision
 * and the refusal reason, pure; the count comes from the fleet (fleet_owner_in_flight) and the
 * scheduler applies it before claiming a drone for a delivery that holds none (scheduler.c).
 * A delivery is in flight while its assignment holds a drone (status "assigned", fleet.h).
 * Leaf module: pure functions, thread-safe. */
#ifndef SCHEDULER_QUOTA_H
#define SCHEDULER_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default of DP_OWNER_MAX_IN_FLIGHT; 0 there means no limit. Off by default: the count is one
 * indexed command on MongoDB, but FerretDB (the embedded stack) reads the whole assignments
 * collection for it (0.57 s at 20,000 assignments), so the deployments on MongoDB (the chart,
 * compose) set it. */
#define QUOTA_DEFAULT_MAX "0"
#define QUOTA_MAX         1000000

/* True when an owner with in_flight deliveries holding drones may not get another one:
 * in_flight >= limit. limit 0 = no limit (always false). */
bool quota_exceeded(int64_t limit, size_t in_flight);

/* The refusal reason, "owner X already has N deliveries in flight (limit L)", into out (always
 * NUL-terminated when out_size > 0). owner_id is shown through pl_text_clean (any bytes: invalid
 * UTF-8 becomes U+FFFD, control characters \xNN, cut to PL_TEXT_SHOWN - 1 bytes ending "...");
 * NULL shows as "". Returns strlen(out). */
size_t quota_reason(char *out, size_t out_size, const char *owner_id, size_t in_flight,
                    int64_t limit);

#endif
