/* package.c — CreatePackage handler and package read routes (see package.h).
 * Replies carry a deterministic eventId (UUID v5 of the command's eventId and the reply type),
 * so a redelivered command yields the same reply, which the saga recognises as a duplicate.
 * Reads need credentials when the service has any (auth.h): an owner reads only its own
 * packages (another owner's answers 404 as a missing one) and its own summary (else 403 naming
 * ownerId); admin reads all. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "httpq.h"
#include "log.h"
#include "mem.h"
#include "package.h"
#include "text.h"
#include "store.h"

#define REPLY_NS     "2b7d0e5c-5f3e-4c7a-8d9b-1e6f2a4c8b30"
#define TOPIC_EVENTS "dronedelivery.package.events"

const pl_cfg_opt_t package_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8082", 0, 65535, .help = "package read API port"},
    {"DP_MONGO_URI", PL_CFG_STR, "mongodb://127.0.0.1:27017/", 1, 4096, .secret = true,
     .help = "MongoDB-API server (MongoDB or FerretDB)"},
    {"DP_MONGO_TIMEOUT_MS", PL_CFG_INT, "10000", 100, 600000,
     .help = "MongoDB-API socket timeout: a call on a server that stops answering fails after "
             "it (retried; /readyz answers 503)"},
    {"DP_MONGO_CONNECT_TIMEOUT_MS", PL_CFG_INT, "2000", 100, 600000,
     .help = "MongoDB-API connect and server selection timeout: a call finding no server "
             "fails after it"},
    {"DP_PACKAGE_DB", PL_CFG_STR, "packages", 1, 63, .help = "database of the packages"},
    {NULL},
};

const char *const package_topics[] = {"dronedelivery.package.commands", NULL};

typedef struct package_svc {
	package_store_t *store;
	const pl_auth_t *auth; /* borrowed from the service */
} package_svc_t;

void *package_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                   bool *config_error)
{
	package_store_t *store = package_store_new(
	    pl_cfg_str(env->cfg, "DP_MONGO_URI"), pl_cfg_str(env->cfg, "DP_PACKAGE_DB"),
	    (int)pl_cfg_int(env->cfg, "DP_MONGO_TIMEOUT_MS"),
	    (int)pl_cfg_int(env->cfg, "DP_MONGO_CONNECT_TIMEOUT_MS"), errstr, errstr_size);
	if (!store) {
		*config_error = true;
		return NULL;
	}
	/* Indexes are best effort at start: a server that is down now will be retried by the
	 * handler, and readiness says why meanwhile. */
	if (package_store_ensure_indexes(store) != PL_OK)
		pl_log(PL_LOG_WARN, "indexes_not_created", NULL, "%s", package_store_errmsg());
	package_svc_t *svc = pl_calloc(1, sizeof(*svc));
	svc->store = store;
	svc->auth = env->auth;
	return svc;
}

void package_fini(void *state)
{
	package_svc_t *svc = state;
	package_store_destroy(svc->store);
	pl_free(svc);
}

static void reply_id(const char *cmd_event_id, const char *type, char out[37])
{
	char name[128];
	int n = snprintf(name, sizeof(name), "%s/%s", cmd_event_id, type);
	pl_uuid_v5(REPLY_NS, name, (size_t)n, out);
}

/* Copies src into dst; false when it does not fit (never a silent cut: a cut id would be
 * another package's, or not UTF-8). */
static bool copy_str(char *dst, size_t size, const char *src)
{
	int n = snprintf(dst, size, "%s", src ? src : "");
	return n >= 0 && (size_t)n < size;
}

pl_stage_outcome_t package_handle(pl_stage_ctx_t *ctx, const pl_record_t *record, const json_t *ev,
                                  const pl_avro_schema_t *schema, void *state)
{
	(void)record;
	package_svc_t *svc = state;
	const char *type = pl_avro_schema_short_name(schema);
	if (strcmp(type, "CreatePackage") != 0) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s is not a package command", type);
		return PL_STAGE_DEAD;
	}
	const char *cmd_id = json_string_value(json_object_get(ev, "eventId"));
	const char *delivery_id = json_string_value(json_object_get(ev, "deliveryId"));
	package_t pkg = {0};
	const char *too_long = NULL;
	if (!copy_str(pkg.package_id, sizeof(pkg.package_id),
	              json_string_value(json_object_get(ev, "packageId"))))
		too_long = "packageId";
	if (!copy_str(pkg.owner_id, sizeof(pkg.owner_id),
	              json_string_value(json_object_get(ev, "ownerId"))))
		too_long = "ownerId";
	if (!copy_str(pkg.delivery_id, sizeof(pkg.delivery_id), delivery_id))
		too_long = "deliveryId";
	const char *tag = json_string_value(json_object_get(ev, "tag"));
	pkg.has_tag = tag != NULL;
	if (!copy_str(pkg.tag, sizeof(pkg.tag), tag))
		too_long = "tag";
	int size = package_size_parse(json_string_value(json_object_get(ev, "size")));
	pkg.size = size < 0 ? PACKAGE_SIZE__COUNT : (package_size_t)size;
	pkg.weight = json_number_value(json_object_get(ev, "weight"));
	pkg.created_at_ms = json_integer_value(json_object_get(ev, "requestedAt"));

	package_t stored;
	char reason[300] = "";
	pl_err_t e;
	if (too_long) {
		snprintf(reason, sizeof(reason), "%s is longer than %d bytes", too_long,
		         PACKAGE_STR_MAX);
		e = PL_ERR_INVALID;
	} else {
		e = package_store_upsert(svc->store, &pkg, &stored, reason, sizeof(reason));
	}
	/* the reason quotes ids (cut to its size): safe text, or the reply could not be built */
	pl_text_clean_inplace(reason, sizeof(reason));
	if (e == PL_ERR_TRANSIENT) {
		pl_stage_set_reason(ctx, e, "package store: %s", package_store_errmsg());
		return PL_STAGE_RETRY;
	}
	char id[37];
	json_t *reply;
	const char *reply_type;
	if (e == PL_OK) {
		reply_type = "PackageCreated";
		reply_id(cmd_id, reply_type, id);
		reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:o, s:I}", "eventId", id,
		                  "deliveryId", delivery_id, "causationId", cmd_id, "packageId",
		                  stored.package_id, "ownerId", stored.owner_id, "size",
		                  package_size_name(stored.size), "weight", stored.weight, "tag",
		                  stored.has_tag ? json_string(stored.tag) : json_null(),
		                  "createdAt", (json_int_t)stored.created_at_ms);
	} else {
		/* rejected or malformed: the saga must learn it, or the delivery would wait forever
		 */
		reply_type = "PackageRejected";
		reply_id(cmd_id, reply_type, id);
		pl_log(PL_LOG_INFO, "package_rejected",
		       PL_LOG_FIELDS(PL_LS("package_id", pkg.package_id)), "%s", reason);
		/* the command's own packageId (a copy may have been refused for its length) */
		const char *asked = json_string_value(json_object_get(ev, "packageId"));
		reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "eventId", id, "deliveryId",
		                  delivery_id, "causationId", cmd_id, "packageId",
		                  asked ? asked : "", "reason", reason[0] ? reason : pl_err_str(e),
		                  "rejectedAt", (json_int_t)pkg.created_at_ms);
	}
	pl_err_t pe = pl_stage_produce_event(ctx, TOPIC_EVENTS, delivery_id, reply_type, reply, id);
	json_decref(reply);
	return pe == PL_OK ? PL_STAGE_OK : PL_STAGE_RETRY;
}

static void on_get(pl_http_req_t *req, void *arg)
{
	package_svc_t *svc = arg;
	const char *id = pl_http_param(req, "id");
	pl_principal_t p;
	if (!pl_auth_http(svc->auth, req, &p))
		return;
	package_t pkg;
	pl_err_t e = package_store_get(svc->store, id, &pkg);
	if (e == PL_OK && !pl_auth_may(&p, pkg.owner_id))
		e = PL_ERR_NOT_FOUND; /* another owner's package: as if there were none */
	if (e == PL_OK) {
		pl_httpq_json(req, 200,
		              json_pack("{s:s, s:s, s:f, s:o}", "id", pkg.package_id, "size",
		                        package_size_name(pkg.size), "weight", pkg.weight, "tag",
		                        pkg.has_tag ? json_string(pkg.tag) : json_null()));
	} else if (e == PL_ERR_NOT_FOUND || e == PL_ERR_INVALID) {
		char detail[200];
		snprintf(detail, sizeof(detail), "no package %.128s", id);
		pl_http_problem(req, 404, detail, NULL);
	} else {
		pl_httpq_unavailable(req, "package store", package_store_errmsg());
	}
}

static void on_summary(pl_http_req_t *req, void *arg)
{
	package_svc_t *svc = arg;
	pl_principal_t p;
	if (!pl_auth_http(svc->auth, req, &p))
		return;
	int year, month;
	if (!pl_httpq_year_month(req, &year, &month))
		return;
	if (!pl_auth_http_owner_field(req, &p, "ownerId", pl_http_param(req, "ownerId")))
		return;
	double total = 0;
	pl_err_t e = package_store_total_weight(svc->store, pl_http_param(req, "ownerId"), year,
	                                        month, &total);
	if (e == PL_OK)
		pl_httpq_json(req, 200, json_pack("{s:f}", "totalWeight", total));
	else if (e == PL_ERR_INVALID)
		pl_http_problem(req, 400, "ownerId must be a non-empty id",
		                "[{\"field\":\"ownerId\",\"reason\":\"must be a non-empty id\"}]");
	else
		pl_httpq_unavailable(req, "package store", package_store_errmsg());
}

size_t package_routes(void *state, pl_http_route_t *out, size_t max)
{
	const pl_http_route_t routes[] = {
	    {"GET", "/api/packages/summary/{ownerId}", on_summary, state},
	    {"GET", "/api/packages/{id}", on_get, state},
	};
	return pl_http_routes_copy(out, max, routes, sizeof(routes) / sizeof(routes[0]));
}

bool package_ready(void *state, char *reason, size_t reason_size)
{
	package_svc_t *svc = state;
	char why[400];
	if (package_store_ready(svc->store, why, sizeof(why)))
		return true;
	snprintf(reason, reason_size, "package store: %s", why);
	return false;
}
