/* main.c — dronepipe-delivery: wiring only (see delivery.h). */
#include "delivery.h"

int main(int argc, char **argv)
{
	const pl_service_def_t def = {
	    .name = "dronepipe-delivery",
	    .svc = "delivery",
	    .cfg = delivery_cfg,
	    .group = "delivery",
	    .topics = delivery_topics,
	    .init = delivery_init,
	    .fini = delivery_fini,
	    .batch_handler = delivery_handle_batch,
	    .raw = true,        /* the handler reads records through Avro views, not decoded JSON */
	    .concurrent = true, /* handler is thread-safe (stage.h) */
	    .routes = delivery_routes,
	    .ready = delivery_ready,
	    .tick = delivery_tick,
	};
	return pl_service_main(&def, argc, argv);
}
