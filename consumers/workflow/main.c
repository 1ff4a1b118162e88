/* main.c — dronepipe-workflow: wiring only (see workflow.h). */
#include "area.h"
#include "workflow.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-workflow",
	    .svc = "workflow",
	    .cfg = workflow_cfg,
	    .extra_cfg = pl_area_cfg,
	    .group = "workflow",
	    .topics = workflow_topics,
	    .init = workflow_init,
	    .fini = workflow_fini,
	    .handler = workflow_handle,
	    .on_assign = workflow_assigned,
	    .on_revoke = workflow_revoked,
	    .on_stored = workflow_stored,
	    .tick = workflow_tick,
	    /* its inputs are small and its handler the slowest per record: 512 KB per partition
	     * keeps a replay as fast and 10-20 MB smaller (stage.c) */
	    .queue_kbytes = 512,
	    /* replay of 115k inputs over 18k sagas: peak RSS 31 MB with one arena, 39 MB
	     * without (service.h) */
	    .one_malloc_arena = true,
	};
	return pl_service_main(&def, argc, argv);
}
