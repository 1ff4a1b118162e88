/* dronesim.h — dronepipe-dronesim's stage: flies every assigned drone (sim.h) and reports it.
 *
 * Inputs (group "dronesim", all co-partitioned by deliveryId):
 *   dronedelivery.drone.events     DroneAssigned starts a flight (idempotent per deliveryId);
 *                                  DroneReleased stops it; other records are ignored.
 *   dronedelivery.delivery.events  Completed / Cancelled / Failed stop the flight; Scheduled,
 *                                  Rescheduled, HeadedToPickup carry the route (a reschedule
 *                                  before pickup reroutes the drone); newer versions win.
 * Outputs (the stage's producer, from the tick):
 *   dronedelivery.drone.telemetry  DroneTelemetry every DP_TELEMETRY_INTERVAL_MS per flight and
 *                                  at each phase change (the departure record, seq 0, is
 *                                  produced by the handler, so an assignment's offset is stored
 *                                  only once its flight is durable in the telemetry log).
 *   dronedelivery.drone.events     DroneArrived AtPickup / AtDropoff, eventId = UUID v5 of
 *                                  (deliveryId, phase). Sent synchronously; the flight's phase
 *                                  changes (and its telemetry says so) only after the ack.
 * Restore: on assignment of partition p, the telemetry partition p (last record per delivery)
 * plus the stop signals of drone.events / delivery.events partition p, all from
 * DP_SIM_RESUME_WINDOW_S ago, rebuild the flights: a flight in progress continues from its last
 * recorded position, an arrived or stopped one never flies again. Older assignments are history
 * and are not flown.
 *
 * Ownership: ds_t owns one sim_table_t per assigned partition. Thread rules: everything runs on
 * the stage thread (handler, assign/revoke hooks, tick), except the telemetry delivery
 * callbacks, which only touch metrics. */
#ifndef DRONESIM_DRONESIM_H
#define DRONESIM_DRONESIM_H

#include "service.h"

#define DRONESIM_TOPIC_DRONE_EVENTS    "dronedelivery.drone.events"
#define DRONESIM_TOPIC_DELIVERY_EVENTS "dronedelivery.delivery.events"
#define DRONESIM_TOPIC_TELEMETRY       "dronedelivery.drone.telemetry"

extern const pl_cfg_opt_t dronesim_cfg[];
extern const char *const dronesim_topics[];

void *dronesim_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error);
void dronesim_fini(void *ds);
pl_stage_outcome_t dronesim_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                   const json_t *event, const pl_avro_schema_t *schema, void *ds);
pl_err_t dronesim_assigned(const char *topic, int32_t partition, void *ds);
pl_err_t dronesim_revoked(const char *topic, int32_t partition, void *ds);
void dronesim_tick(void *ds);

#endif
