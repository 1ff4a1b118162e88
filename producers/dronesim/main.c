/* main.c — dronepipe-dronesim: wiring only (see dronesim.h). */
#include "dronesim.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-dronesim",
	    .svc = "dronesim",
	    .cfg = dronesim_cfg,
	    .group = "dronesim",
	    .topics = dronesim_topics,
	    .init = dronesim_init,
	    .fini = dronesim_fini,
	    .handler = dronesim_handle,
	    .on_assign = dronesim_assigned,
	    .on_revoke = dronesim_revoked,
	    .tick = dronesim_tick,
	    /* small inputs, 12 partitions: catching up with 1M delivery events held 40 MB RSS
	     * with the stage's 2 MB per partition, 29 MB with 512 KB (stage.c) */
	    .queue_kbytes = 512,
	    /* a restart restoring 1M ended deliveries: 37 MB peak RSS with one arena, 58 MB
	     * without (service.h) */
	    .one_malloc_arena = true,
	};
	return pl_service_main(&def, argc, argv);
}
