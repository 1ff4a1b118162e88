/* workflow.h — dronepipe-workflow's stage: saga states in memory per partition, restored from
 * the compacted changelog dronedelivery.workflow.state when a partition is assigned, applied
 * with saga_apply (saga.h) to every input record and to due timers.
 *
 * Ownership: wf_t owns every saga state (json) and the timer index. Thread rules: everything
 * runs on the stage thread (handler, assign/revoke hooks, tick); nothing is shared. */
#ifndef WORKFLOW_WORKFLOW_H
#define WORKFLOW_WORKFLOW_H

/* Header of a client's request record naming who sent it (the ingress's
 * INGRESS_PRINCIPAL_HEADER; services share no headers, so the name is repeated here). */
#define WORKFLOW_PRINCIPAL_HEADER "dp_principal"

#include "service.h"

extern const pl_cfg_opt_t workflow_cfg[];
extern const char *const workflow_topics[];

void *workflow_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error);
void workflow_fini(void *wf);
pl_stage_outcome_t workflow_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                   const json_t *event, const pl_avro_schema_t *schema, void *wf);
pl_err_t workflow_assigned(const char *topic, int32_t partition, void *wf);
pl_err_t workflow_revoked(const char *topic, int32_t partition, void *wf);
void workflow_stored(const char *topic, int32_t partition, int64_t next_offset, void *wf);
void workflow_tick(void *wf);

#endif
