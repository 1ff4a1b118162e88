/* routes.c — ingress routes: POST/PATCH/DELETE delivery requests and confirmations.
 *
 * Each accepted request becomes one Avro event on dronedelivery.requests keyed by deliveryId.
 * The HTTP answer is given from the delivery-report callback: 2xx once the broker acknowledged
 * (acks=all, idempotent producer), 503 + Retry-After when the record could not be written in
 * DP_INGRESS_ACK_TIMEOUT_MS (librdkafka's message.timeout.ms) or the queue is full.
 * Owns: one pending_t per request in flight. Two parties hold it: the delivery report and the
 * deadline list (refs = 2). Whichever comes first answers (the `answered` flag decides, once);
 * each party then drops its reference and the last one frees it. A request is therefore always
 * answered within DP_INGRESS_ACK_TIMEOUT_MS, even when librdkafka reports later (a broker that
 * vanished with the record in flight), and never answered twice. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "log.h"
#include "mem.h"
#include "routes.h"
#include "text.h"
#include "timefmt.h"
#include "validate.h"

const pl_cfg_opt_t ingress_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8080", 0, 65535, .help = "public API port"},
    {"DP_INGRESS_ACK_TIMEOUT_MS", PL_CFG_INT, "5000", 100, 300000,
     .help = "longest wait for the broker's acknowledgement before answering 503"},
    {"DP_INGRESS_RETRY_AFTER_S", PL_CFG_INT, "1", 1, 3600,
     .help = "Retry-After seconds sent with 503"},
    {"DP_INGRESS_TRACK_BASE_URL", PL_CFG_STR, "", 0, 1024,
     .help = "public address of the delivery service put before /track/{id}?token=... in "
             "trackingUrl (with DP_TRACK_TOKEN_SECRET); empty = a path relative to the API's "
             "own address"},
    {NULL},
};

typedef struct pending {
	ingress_t *ing;
	atomic_int refs;
	atomic_bool answered;
	bool listed; /* in the deadline list; guarded by ing->pending_lock */
	int64_t deadline_ms;
	struct pending *prev, *next;
	pl_http_req_t *req;
	unsigned ok_status;
	char *ok_body; /* JSON, NULL for 204 */
	char location[80];
	struct timespec started;
} pending_t;

static void count_unavailable(ingress_t *ing, const char *reason)
{
	const char *l[] = {reason};
	pl_metric_inc(pl_metric_get(ing->m_unavailable, l));
}

static void answer_unavailable(ingress_t *ing, pl_http_req_t *req, const char *reason,
                               const char *detail)
{
	char ra[16];
	snprintf(ra, sizeof(ra), "%d", ing->retry_after_s);
	pl_http_add_header(req, "Retry-After", ra);
	count_unavailable(ing, reason);
	pl_http_problem(req, 503, detail, NULL);
}

static void pending_release(pending_t *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1) {
		pl_free(p->ok_body);
		pl_free(p);
	}
}

/* Unlinks p from the deadline list; true when it was there (the caller inherits its ref). */
static bool pending_unlist(ingress_t *ing, pending_t *p)
{
	pthread_mutex_lock(&ing->pending_lock);
	bool was = p->listed;
	if (was) {
		if (p->prev)
			p->prev->next = p->next;
		else
			ing->pending_head = p->next;
		if (p->next)
			p->next->prev = p->prev;
		else
			ing->pending_tail = p->prev;
		p->listed = false;
	}
	pthread_mutex_unlock(&ing->pending_lock);
	return was;
}

static void on_produced(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                        int64_t offset)
{
	(void)partition;
	(void)offset;
	pending_t *p = opaque;
	ingress_t *ing = p->ing;
	if (pending_unlist(ing, p))
		pending_release(p);
	if (!atomic_exchange(&p->answered, true)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		pl_metric_observe(pl_metric_get0(ing->m_produce),
		                  (double)(now.tv_sec - p->started.tv_sec) +
		                      (double)(now.tv_nsec - p->started.tv_nsec) / 1e9);
		if (err == PL_OK) {
			if (p->location[0])
				pl_http_add_header(p->req, "Location", p->location);
			pl_http_respond(p->req, p->ok_status, "application/json", p->ok_body,
			                p->ok_body ? strlen(p->ok_body) : 0);
		} else {
			char detail[256];
			snprintf(detail, sizeof(detail),
			         "the request could not be written to Kafka (%s); nothing was "
			         "accepted, retry later",
			         reason ? reason : pl_err_str(err));
			answer_unavailable(ing, p->req,
			                   err == PL_ERR_TIMEOUT ? "timeout" : "broker", detail);
		}
		atomic_fetch_sub(&ing->inflight, 1);
	}
	pending_release(p);
}

/* Answers 503 for every request whose deadline passed without a delivery report. */
static void *timer_main(void *arg)
{
	ingress_t *ing = arg;
	while (!atomic_load(&ing->timer_stop)) {
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
		int64_t now = pl_now_ms();
		for (;;) {
			pthread_mutex_lock(&ing->pending_lock);
			pending_t *p = ing->pending_head;
			if (p && p->deadline_ms <= now) {
				ing->pending_head = p->next;
				if (p->next)
					p->next->prev = NULL;
				else
					ing->pending_tail = NULL;
				p->listed = false;
			} else {
				p = NULL;
			}
			pthread_mutex_unlock(&ing->pending_lock);
			if (!p)
				break;
			if (!atomic_exchange(&p->answered, true)) {
				char detail[256];
				snprintf(
				    detail, sizeof(detail),
				    "Kafka did not acknowledge the request within %lld ms; it may "
				    "or may not be recorded: retry with the same Idempotency-Key "
				    "to be safe",
				    (long long)ing->ack_timeout_ms);
				answer_unavailable(ing, p->req, "timeout", detail);
				atomic_fetch_sub(&ing->inflight, 1);
			}
			pending_release(p);
		}
	}
	return NULL;
}

void ingress_answer_pending(ingress_t *ing)
{
	for (;;) {
		pthread_mutex_lock(&ing->pending_lock);
		pending_t *p = ing->pending_head;
		if (p) {
			ing->pending_head = p->next;
			if (p->next)
				p->next->prev = NULL;
			else
				ing->pending_tail = NULL;
			p->listed = false;
		}
		pthread_mutex_unlock(&ing->pending_lock);
		if (!p)
			return;
		if (!atomic_exchange(&p->answered, true)) {
			answer_unavailable(
			    ing, p->req, "shutdown",
			    "the service is shutting down before Kafka acknowledged "
			    "the request; it may or may not be recorded: retry with the "
			    "same Idempotency-Key to be safe");
			atomic_fetch_sub(&ing->inflight, 1);
		}
		pending_release(p);
	}
}

static bool valid_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

void ingress_delivery_id(const char *principal, const char *owner_id, const char *idempotency_key,
                         char out[37])
{
	/* name = ownerId NUL key [NUL principal]: the NULs keep ("ab","c") and ("a","bc") apart;
	 * the open principal ("") adds nothing, so ids derived before authentication existed stay
	 * the same */
	size_t pl = strlen(principal), ol = strlen(owner_id), kl = strlen(idempotency_key);
	char *name = pl_malloc(ol + kl + pl + 2);
	memcpy(name, owner_id, ol);
	name[ol] = '\0';
	memcpy(name + ol + 1, idempotency_key, kl);
	size_t n = ol + 1 + kl;
	if (pl) {
		name[n++] = '\0';
		memcpy(name + n, principal, pl);
		n += pl;
	}
	pl_uuid_v5(INGRESS_IDEMPOTENCY_NS, name, n, out);
	pl_free(name);
}

static void answer_invalid(pl_http_req_t *req, ingress_problem_t *problem)
{
	char *errors = ingress_problem_errors_json(problem);
	pl_http_problem(req, problem->status ? problem->status : 400, problem->detail, errors);
	pl_free(errors);
}

/* Encodes and produces event; on success the request is suspended until on_produced. Takes
 * ownership of ok_body. */
static void produce(ingress_t *ing, pl_http_req_t *req, const pl_avro_schema_t *schema,
                    json_t *event, const char *delivery_id, const char *event_id,
                    const pl_principal_t *principal, unsigned ok_status, char *ok_body,
                    const char *location)
{
	void *buf = NULL;
	size_t len = 0;
	char err[256];
	if (pl_avro_encode(schema, event, &buf, &len, err, sizeof(err)) != PL_OK) {
		/* the validator let through something the schema refuses: our bug, say so */
		pl_log(PL_LOG_ERROR, "encode_failed",
		       PL_LOG_FIELDS(PL_LS("delivery_id", delivery_id)), "%s", err);
		pl_http_problem(req, 500, "the request could not be encoded", NULL);
		pl_free(ok_body);
		return;
	}
	pending_t *p = pl_calloc(1, sizeof(*p));
	p->ing = ing;
	atomic_init(&p->refs, 2);
	p->deadline_ms = pl_now_ms() + ing->ack_timeout_ms;
	p->req = req;
	p->ok_status = ok_status;
	p->ok_body = ok_body;
	if (location)
		snprintf(p->location, sizeof(p->location), "%s", location);
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	char traceparent[56];
	pl_traceparent_child(pl_http_header(req, "traceparent"), traceparent);
	const char *rid = pl_http_request_id(req);
	/* dp_principal: who asked; the workflow refuses a change to a delivery by another owner
	 * (the ingress does not know whose a delivery is; the saga does) */
	char tag[PL_AUTH_OWNER_MAX + 16];
	pl_auth_principal_tag(principal, tag, sizeof(tag));
	pl_header_t extra[] = {{"request_id", rid, strlen(rid)},
	                       {INGRESS_PRINCIPAL_HEADER, tag, strlen(tag)}};
	pl_event_meta_t meta = {.event_type = pl_avro_schema_short_name(schema),
	                        .event_id = event_id,
	                        .traceparent = traceparent,
	                        .extra = extra,
	                        .extra_count = tag[0] ? 2 : 1};
	atomic_fetch_add(&ing->inflight, 1);
	pl_http_suspend(req);
	pthread_mutex_lock(&ing->pending_lock);
	p->listed = true;
	p->prev = ing->pending_tail;
	if (ing->pending_tail)
		ing->pending_tail->next = p;
	else
		ing->pending_head = p;
	ing->pending_tail = p;
	pthread_mutex_unlock(&ing->pending_lock);
	pl_err_t e = pl_producer_send_event(ing->producer, INGRESS_TOPIC, delivery_id, buf, len,
	                                    &meta, on_produced, p);
	pl_free(buf);
	if (e != PL_OK) {
		/* not sent: no report will come; if the timer already answered, it owns p */
		bool listed = pending_unlist(ing, p);
		bool answered = atomic_exchange(&p->answered, true);
		if (listed)
			pending_release(p);
		pending_release(p); /* the report's reference */
		if (answered)
			return;
		atomic_fetch_sub(&ing->inflight, 1);
		answer_unavailable(ing, req, e == PL_ERR_QUEUE_FULL ? "queue_full" : "broker",
		                   e == PL_ERR_QUEUE_FULL
		                       ? "too many requests waiting for Kafka; retry later"
		                       : "Kafka refused the request; retry later");
	}
}

static bool accepting(ingress_t *ing, pl_http_req_t *req, pl_principal_t *principal)
{
	if (atomic_load(&ing->draining)) {
		answer_unavailable(ing, req, "shutdown", "the service is shutting down; retry");
		return false;
	}
	return pl_auth_http(ing->auth, req, principal);
}

/* Writes {"key":v or ,"key":v (v NULL: null; the validator sets every member echoed). */
static void echo_member(pl_jsonw_t *w, bool first, const char *key, const json_t *v)
{
	pl_jsonw_char(w, first ? '{' : ',');
	pl_jsonw_string(w, key, strlen(key));
	pl_jsonw_char(w, ':');
	if (!pl_jsonw_value(w, v))
		pl_jsonw_raw(w, "null", 4);
}

/* Response body of POST: the request as the client sees it, with the new deliveryId. Written
 * straight from the event, members in this order, without building a second object. */
static char *echo_create(const json_t *ev, const char *tracking_url)
{
	static const char *const top[] = {"deliveryId", "ownerId", "pickupLocation",
	                                  "dropOffLocation"};
	static const char *const after[] = {"deadline", "expedited", "confirmationRequired"};
	static const char *const package[] = {"packageId", "size", "weight", "tag"};
	const size_t n_top = sizeof(top) / sizeof(top[0]),
	             n_after = sizeof(after) / sizeof(after[0]),
	             n_package = sizeof(package) / sizeof(package[0]);
	const json_t *pi = json_object_get(ev, "packageInfo");
	char when[32];
	pl_time_format(json_integer_value(json_object_get(ev, "pickupTime")), when);
	pl_jsonw_t w;
	pl_jsonw_init(&w, PL_JSONW_INSERTION_ORDER);
	for (size_t i = 0; i < n_top; i++)
		echo_member(&w, i == 0, top[i], json_object_get(ev, top[i]));
	pl_jsonw_raw(&w, ",\"pickupTime\":", 14);
	pl_jsonw_string(&w, when, strlen(when));
	for (size_t i = 0; i < n_after; i++)
		echo_member(&w, false, after[i], json_object_get(ev, after[i]));
	pl_jsonw_raw(&w, ",\"packageInfo\":", 15);
	for (size_t i = 0; i < n_package; i++)
		echo_member(&w, i == 0, package[i], json_object_get(pi, package[i]));
	pl_jsonw_char(&w, '}');
	if (tracking_url) {
		pl_jsonw_raw(&w, ",\"trackingUrl\":", 15);
		pl_jsonw_string(&w, tracking_url, strlen(tracking_url));
	}
	pl_jsonw_char(&w, '}');
	return pl_jsonw_finish(&w, NULL);
}

/* An Idempotency-Key is stored in the event and names the delivery: text, bounded. */
#define IDEMPOTENCY_KEY_MAX      255
#define IDEMPOTENCY_KEY_MAX_TEXT "255"

static bool idempotency_key_ok(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > IDEMPOTENCY_KEY_MAX || !pl_text_utf8_valid(key, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return false;
	return true;
}

static void on_create(pl_http_req_t *req, void *arg)
{
	ingress_t *ing = arg;
	pl_principal_t principal;
	if (!accepting(ing, req, &principal))
		return;
	size_t len;
	const char *body = pl_http_body(req, &len);
	json_t *ev = NULL;
	ingress_problem_t problem = {0};
	if (ingress_validate_create(body, len, &ev, &problem) != PL_OK ||
	    ingress_validate_area(&ing->area, ev, &problem) != PL_OK) {
		json_decref(ev);
		answer_invalid(req, &problem);
		ingress_problem_free(&problem);
		return;
	}
	ingress_problem_free(&problem);
	const char *owner_id = json_string_value(json_object_get(ev, "ownerId"));
	if (!pl_auth_http_owner_field(req, &principal, "ownerId", owner_id)) {
		json_decref(ev);
		return;
	}
	char delivery_id[37], event_id[37];
	const char *key = pl_http_header(req, "Idempotency-Key");
	if (key && *key && !idempotency_key_ok(key)) {
		json_decref(ev);
		pl_http_problem(req, 400,
		                "the Idempotency-Key header must be 1 to " IDEMPOTENCY_KEY_MAX_TEXT
		                " bytes of UTF-8 text without control characters",
		                "[{\"field\":\"Idempotency-Key\",\"reason\":\"must be 1 "
		                "to " IDEMPOTENCY_KEY_MAX_TEXT
		                " bytes of UTF-8 text without control "
		                "characters\"}]");
		return;
	}
	if (key && *key) {
		/* the principal is part of the key's namespace: nobody can claim another
		 * caller's key first */
		char tag[PL_AUTH_OWNER_MAX + 16];
		ingress_delivery_id(pl_auth_principal_tag(&principal, tag, sizeof(tag)), owner_id,
		                    key, delivery_id);
		/* the same retried request is the same event: consumers dedupe on eventId */
		pl_uuid_v5(INGRESS_IDEMPOTENCY_NS, delivery_id, strlen(delivery_id), event_id);
		json_object_set_new(ev, "idempotencyKey", json_string(key));
	} else {
		pl_uuid_v4(delivery_id);
		pl_uuid_v4(event_id);
		json_object_set_new(ev, "idempotencyKey", json_null());
	}
	json_object_set_new(ev, "eventId", json_string(event_id));
	json_object_set_new(ev, "deliveryId", json_string(delivery_id));
	json_object_set_new(ev, "requestedAt", json_integer(pl_now_ms()));
	char location[80];
	snprintf(location, sizeof(location), "/api/deliveries/%s", delivery_id);
	char *tracking = ingress_tracking_url(ing, delivery_id);
	produce(ing, req, ing->s_requested, ev, delivery_id, event_id, &principal, 202,
	        echo_create(ev, tracking), location);
	pl_free(tracking);
	json_decref(ev);
}

/* Path id of PATCH/DELETE/confirmations; answers 400 itself when not a UUID. */
static const char *path_delivery_id(pl_http_req_t *req)
{
	const char *id = pl_http_param(req, "deliveryId");
	if (valid_uuid(id))
		return id;
	pl_http_problem(req, 400, "the delivery id in the path is not a UUID",
	                "[{\"field\":\"deliveryId\",\"reason\":\"must be a UUID like "
	                "3f2c1e4a-8b7d-4c2e-9f1a-0b6d5e4c3a21\"}]");
	return NULL;
}

static void finish_event(json_t *ev, const char *delivery_id, char event_id[37])
{
	pl_uuid_v4(event_id);
	json_object_set_new(ev, "eventId", json_string(event_id));
	json_object_set_new(ev, "deliveryId", json_string(delivery_id));
	json_object_set_new(ev, "requestedAt", json_integer(pl_now_ms()));
}

typedef pl_err_t (*validate_fn)(const char *body, size_t len, json_t **event,
                                ingress_problem_t *problem);

/* The routes on /api/deliveryrequests/{deliveryId}...: validate the body (validate NULL = no
 * body; check_area: then the service-area rule on its locations), then produce the event of schema;
 * the answer is ok_status with ok_body (taken over; NULL = empty, and freed here when the request
 * is refused before producing). */
static void on_delivery_route(ingress_t *ing, pl_http_req_t *req, validate_fn validate,
                              bool check_area, const pl_avro_schema_t *schema, unsigned ok_status,
                              char *ok_body)
{
	const char *id = NULL;
	json_t *ev = NULL;
	pl_principal_t principal;
	if (!accepting(ing, req, &principal) || !(id = path_delivery_id(req)))
		goto refused;
	if (validate) {
		size_t len;
		const char *body = pl_http_body(req, &len);
		ingress_problem_t problem = {0};
		pl_err_t e = validate(body, len, &ev, &problem);
		if (e == PL_OK && check_area)
			e = ingress_validate_area(&ing->area, ev, &problem);
		if (e != PL_OK)
			answer_invalid(req, &problem);
		ingress_problem_free(&problem);
		if (e != PL_OK) {
			json_decref(ev);
			goto refused;
		}
	} else {
		ev = json_object();
	}
	char event_id[37];
	finish_event(ev, id, event_id);
	produce(ing, req, schema, ev, id, event_id, &principal, ok_status, ok_body, NULL);
	json_decref(ev);
	return;
refused:
	pl_free(ok_body);
}

static void on_reschedule(pl_http_req_t *req, void *arg)
{
	ingress_t *ing = arg;
	const char *id = pl_http_param(req, "deliveryId");
	on_delivery_route(ing, req, ingress_validate_reschedule, true, ing->s_reschedule, 200,
	                  pl_asprintf("\"%s\"", id));
}

static void on_cancel(pl_http_req_t *req, void *arg)
{
	ingress_t *ing = arg;
	on_delivery_route(ing, req, NULL, false, ing->s_cancel, 204, NULL);
}

static void on_confirm(pl_http_req_t *req, void *arg)
{
	ingress_t *ing = arg;
	const char *id = pl_http_param(req, "deliveryId");
	on_delivery_route(
	    ing, req, ingress_validate_confirmation, false, ing->s_confirmed, 202,
	    pl_asprintf("{\"deliveryId\":\"%s\",\"status\":\"ConfirmationReceived\"}", id));
}

static void on_probe(pl_http_req_t *req, void *arg)
{
	ingress_t *ing = arg;
	char reason[200];
	if (ingress_ready(ing, reason, sizeof(reason))) {
		pl_http_respond(req, 200, "application/json", "{\"status\":\"UP\"}", 15);
		return;
	}
	pl_http_problem(req, 503, reason, NULL);
}

static void on_actuator(pl_http_req_t *req, void *arg)
{
	(void)arg;
	pl_http_respond(req, 200, "application/json", "{\"status\":\"UP\"}", 15);
}

size_t ingress_routes(ingress_t *ing, pl_http_route_t *out, size_t max)
{
	const pl_http_route_t routes[] = {
	    {"POST", "/api/deliveryrequests", on_create, ing, PL_HTTP_BODY_JSON},
	    {"PATCH", "/api/deliveryrequests/{deliveryId}", on_reschedule, ing, PL_HTTP_BODY_JSON},
	    {"DELETE", "/api/deliveryrequests/{deliveryId}", on_cancel, ing, PL_HTTP_BODY_NONE},
	    {"POST", "/api/deliveryrequests/{deliveryId}/confirmations", on_confirm, ing,
	     PL_HTTP_BODY_JSON},
	    {"GET", "/api/probe", on_probe, ing, PL_HTTP_BODY_NONE},
	    {"GET", "/actuator/health", on_actuator, ing, PL_HTTP_BODY_NONE},
	};
	return pl_http_routes_copy(out, max, routes, sizeof(routes) / sizeof(routes[0]));
}

bool ingress_ready(void *arg, char *reason, size_t reason_size)
{
	ingress_t *ing = arg;
	if (atomic_load(&ing->draining)) {
		snprintf(reason, reason_size, "shutting down");
		return false;
	}
	return pl_producer_ready(ing->producer, reason, reason_size);
}

char *ingress_tracking_url(const ingress_t *ing, const char *delivery_id)
{
	char *path = pl_auth_track_path(ing->auth, delivery_id);
	if (!path)
		return NULL;
	char *url = pl_asprintf("%s%s", ing->track_base_url, path);
	pl_free(path);
	return url;
}

bool ingress_init(ingress_t *ing, const pl_cfg_t *cfg, pl_producer_t *producer,
                  const pl_avro_registry_t *registry, char *errstr, size_t errstr_size)
{
	memset(ing, 0, sizeof(*ing));
	ing->producer = producer;
	ing->registry = registry;
	ing->retry_after_s = (int)pl_cfg_int(cfg, "DP_INGRESS_RETRY_AFTER_S");
	ing->ack_timeout_ms = pl_cfg_int(cfg, "DP_INGRESS_ACK_TIMEOUT_MS");
	int64_t request_timeout = pl_cfg_int(cfg, "DP_HTTP_REQUEST_TIMEOUT_MS");
	if (ing->ack_timeout_ms >= request_timeout) {
		snprintf(
		    errstr, errstr_size,
		    "DP_INGRESS_ACK_TIMEOUT_MS (%lld) must be below DP_HTTP_REQUEST_TIMEOUT_MS "
		    "(%lld): a request waiting for Kafka would be cut off before its answer",
		    (long long)ing->ack_timeout_ms, (long long)request_timeout);
		return false;
	}
	pthread_mutex_init(&ing->pending_lock, NULL);
	ing->s_requested = pl_avro_schema_get(registry, "DeliveryRequested");
	ing->s_reschedule = pl_avro_schema_get(registry, "DeliveryRescheduleRequested");
	ing->s_cancel = pl_avro_schema_get(registry, "DeliveryCancelRequested");
	ing->s_confirmed = pl_avro_schema_get(registry, "DeliveryConfirmed");
	if (!ing->s_requested || !ing->s_reschedule || !ing->s_cancel || !ing->s_confirmed) {
		snprintf(errstr, errstr_size, "a request schema is missing from the build");
		return false;
	}
	if (pl_area_from_cfg(cfg, &ing->area, errstr, errstr_size) != PL_OK)
		return false;
	ing->auth = pl_auth_new(cfg, errstr, errstr_size);
	if (!ing->auth)
		return false;
	const char *base = pl_cfg_str(cfg, "DP_INGRESS_TRACK_BASE_URL");
	ing->track_base_url = pl_strdup(base ? base : "");
	size_t bl = strlen(ing->track_base_url);
	if (bl > 0 && ing->track_base_url[bl - 1] == '/')
		ing->track_base_url[bl - 1] = '\0';
	pl_metrics_t *m = pl_metrics_default();
	ing->m_produce = pl_metrics_family(m, "dronepipe_ingress_produce_seconds",
	                                   "Time from produce to the broker's acknowledgement",
	                                   PL_METRIC_HISTOGRAM, "", NULL, 0);
	ing->m_unavailable =
	    pl_metrics_family(m, "dronepipe_ingress_unavailable_total", "503 answers by reason",
	                      PL_METRIC_COUNTER, "reason", NULL, 0);
	if (pthread_create(&ing->timer, NULL, timer_main, ing) != 0) {
		snprintf(errstr, errstr_size, "cannot start the ack timer thread");
		ingress_fini(ing); /* the authenticator and base URL made above */
		return false;
	}
	ing->timer_started = true;
	return true;
}

void ingress_fini(ingress_t *ing)
{
	if (ing->timer_started) {
		atomic_store(&ing->timer_stop, true);
		pthread_join(ing->timer, NULL);
		ing->timer_started = false;
	}
	pthread_mutex_destroy(&ing->pending_lock);
	pl_auth_destroy(ing->auth);
	ing->auth = NULL;
	pl_free(ing->track_base_url);
	ing->track_base_url = NULL;
}
