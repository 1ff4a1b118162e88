/* main.c — dronepipe-workflow: wiring only (see workflow.h). */
#include "workflow.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-workflow",
	    .svc = "workflow",
	    .cfg = workflow_cfg,
	    .group = "workflow",
	    .topics = workflow_topics,
	    .init = workflow_init,
	    .fini = workflow_fini,
	    .handler = workflow_handle,
	    .on_assign = workflow_assigned,
	    .on_revoke = workflow_revoked,
	    .on_stored = workflow_stored,
	    .tick = workflow_tick,
	};
	return pl_service_main(&def, argc, argv);
}
