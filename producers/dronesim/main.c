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
	};
	return pl_service_main(&def, argc, argv);
}
