/* package.h — dronepipe-package's stage and read API: CreatePackage commands are stored
 * (package_store_upsert) and answered with PackageCreated or PackageRejected on
 * dronedelivery.package.events; GET /api/packages/{id} and /api/packages/summary/{ownerId}.
 * Ownership: the service state owns the store. Thread rules: the handler runs on the stage
 * thread, routes on HTTP threads; the store is thread-safe. */
#ifndef PACKAGE_PACKAGE_H
#define PACKAGE_PACKAGE_H

#include "service.h"

extern const pl_cfg_opt_t package_cfg[];
extern const char *const package_topics[];

void *package_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                   bool *config_error);
void package_fini(void *state);
pl_stage_outcome_t package_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                  const json_t *event, const pl_avro_schema_t *schema, void *state);
size_t package_routes(void *state, pl_http_route_t *out, size_t max);
bool package_ready(void *state, char *reason, size_t reason_size);

#endif
