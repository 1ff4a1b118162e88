/* scheduler.h — dronepipe-scheduler's stage and read API: AssignDrone and ReleaseDrone commands
 * (dronedelivery.drone.commands) applied to the fleet (fleet.h), answered on
 * dronedelivery.drone.events with DroneAssigned / DroneUnavailable / DroneReleased (an
 * AssignDrone outside the service area or over the drone range, area.h, gets a permanent
 * DroneUnavailable with the reason and claims nothing, and so does one whose owner already has
 * DP_OWNER_MAX_IN_FLIGHT deliveries holding drones, quota.h, unless the delivery has its drone);
 * GET /api/dronedeliveries/{deliveryId} and /api/dronedeliveries/utilization.
 * Ownership: the service state owns the fleet. Thread rules: handler on the stage thread,
 * routes on HTTP threads; the fleet is thread-safe. */
#ifndef SCHEDULER_SCHEDULER_H
#define SCHEDULER_SCHEDULER_H

#include "service.h"

extern const pl_cfg_opt_t scheduler_cfg[];
extern const char *const scheduler_topics[];

void *scheduler_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                     bool *config_error);
void scheduler_fini(void *state);
pl_stage_outcome_t scheduler_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                    const json_t *event, const pl_avro_schema_t *schema,
                                    void *state);
size_t scheduler_routes(void *state, pl_http_route_t *out, size_t max);
bool scheduler_ready(void *state, char *reason, size_t reason_size);

#endif
