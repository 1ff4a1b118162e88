/* main.c — dronepipe-package: wiring only (see package.h). */
#include "package.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-package",
	    .svc = "package",
	    .cfg = package_cfg,
	    .group = "package",
	    .topics = package_topics,
	    .init = package_init,
	    .fini = package_fini,
	    .handler = package_handle,
	    .concurrent = true, /* handler is thread-safe (stage.h) */
	    .routes = package_routes,
	    .ready = package_ready,
	};
	return pl_service_main(&def, argc, argv);
}
