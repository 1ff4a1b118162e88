/* main.c — dronepipe-scheduler: wiring only (see scheduler.h). */
#include "area.h"
#include "scheduler.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-scheduler",
	    .svc = "scheduler",
	    .cfg = scheduler_cfg,
	    .extra_cfg = pl_area_cfg,
	    .group = "scheduler",
	    .topics = scheduler_topics,
	    .init = scheduler_init,
	    .fini = scheduler_fini,
	    .handler = scheduler_handle,
	    .concurrent = true, /* handler is thread-safe (stage.h) */
	    .routes = scheduler_routes,
	    .ready = scheduler_ready,
	};
	return pl_service_main(&def, argc, argv);
}
