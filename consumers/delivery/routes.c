/* routes.c — dronepipe-delivery's HTTP routes (API.md "Delivery") and live streams.
 *
 *   GET /api/deliveries/summary?ownerId=&year=&month=   {"count":N}; 400 naming each bad field
 *   GET /api/deliveries/public/{id}                     Delivery JSON (GET only: others 405)
 *   GET /api/deliveries/{id}                            Delivery JSON
 *   GET /api/deliveries/{id}/owner                      {"userId","accountId"}
 *   GET /api/deliveries/{id}/status                     status (status.h)
 *   GET /api/deliveries/{id}/history                    [history entries], in version order
 *   GET /api/deliveries/{id}/events                     text/event-stream of the status
 *   GET /track/{id}                                     the tracking page (always 200: the page
 *                                                       itself waits for an unknown delivery)
 *   GET /assets/track.css, /assets/track.js             its style sheet and script (track.c)
 * Unknown delivery -> 404; Redis unreachable -> 503 with the reason and Retry-After.
 *
 * Authentication (auth.h): every route needs credentials when the service has any configured
 * (401 otherwise). An owner reads only its own deliveries: another owner's answers 404 with the
 * very text of a missing one, so existence does not leak; the summary of another owner is 403
 * naming ownerId. Admin reads everything. The per-delivery routes and the tracking page also
 * admit ?token=<tracking token of that delivery> without credentials: the link a customer was
 * given. Status and Delivery JSON carry that link as trackingUrl.
 *
 * Stream protocol: "retry: 3000", then `event: status` frames (id = status_event_id, data = the
 * status JSON) as the delivery changes, and after a finished stage one `event: end` frame, then
 * the body ends. A ": ping" comment is written after 15 s without data (pipeline/http.c).
 * Owns: the live_sub_t list entries (their stream handles) of dlv_t. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "delivery.h"
#include "mem.h"
#include "status.h"

struct live_sub {
	char *delivery_id;
	pl_http_stream_t *stream;
	char last_id[48]; /* status_event_id of the last status sent; "" = none yet */
	live_sub_t *next;
};

#define SSE_CONTENT_TYPE "text/event-stream; charset=utf-8"

/* ---- answers ------------------------------------------------------------------------------ */

static void respond_json(pl_http_req_t *req, unsigned status, json_t *doc)
{
	/* NULL when a builder met text jansson refuses: a plain 500, and the service goes on */
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text) {
		pl_http_problem(req, 500, "the answer could not be built", NULL);
		return;
	}
	pl_http_respond(req, status, "application/json", text, strlen(text));
	free(text);
}

/* Answers a store error: 404 for an unknown delivery, 400 for an id no key can have (keys.h),
 * 503 (Retry-After) otherwise. */
static void respond_store_error(pl_http_req_t *req, pl_err_t e, const char *err)
{
	if (e == PL_ERR_NOT_FOUND || e == PL_ERR_INVALID) {
		pl_http_problem(req, e == PL_ERR_NOT_FOUND ? 404 : 400, err, NULL);
		return;
	}
	char detail[320];
	snprintf(detail, sizeof(detail), "delivery store unavailable: %s", err);
	pl_http_add_header(req, "Retry-After", "1");
	pl_http_problem(req, 503, detail, NULL);
}

/* Loads the delivery (and telemetry when wanted) or answers the error; false when answered. */
static bool load(dlv_t *d, pl_http_req_t *req, json_t **lc, json_t **tm)
{
	char err[256] = "";
	pl_err_t e = store_get(d->store, pl_http_param(req, "id"), lc, tm, err, sizeof(err));
	if (e == PL_OK)
		return true;
	respond_store_error(req, e, err);
	return false;
}

/* True when the request carries the tracking token of the delivery in its path. */
static bool has_track_token(dlv_t *d, pl_http_req_t *req)
{
	return pl_auth_track_ok(d->auth, pl_http_param(req, "id"), pl_http_query(req, "token"));
}

/* Admits a request for the delivery in the path: its tracking token, or credentials of its
 * owner or admin. Loads the delivery when lc is given, or when it is needed to learn the owner
 * (then released). Answers 401/404/503 itself and returns false. Another owner's delivery is
 * answered exactly as a missing one. */
static bool admit(dlv_t *d, pl_http_req_t *req, json_t **lc, json_t **tm)
{
	pl_principal_t p;
	bool by_token = has_track_token(d, req);
	if (!by_token && !pl_auth_http(d->auth, req, &p))
		return false;
	bool check_owner = !by_token && p.role == PL_ROLE_OWNER;
	json_t *own_lc = NULL;
	if (!lc && !check_owner)
		return true;
	if (!load(d, req, lc ? lc : &own_lc, lc ? tm : NULL))
		return false;
	json_t *doc = lc ? *lc : own_lc;
	bool ok =
	    !check_owner || pl_auth_may(&p, json_string_value(json_object_get(doc, "ownerId")));
	json_decref(own_lc);
	if (ok)
		return true;
	if (lc) {
		json_decref(*lc);
		*lc = NULL;
	}
	if (tm) {
		json_decref(*tm);
		*tm = NULL;
	}
	char err[256];
	snprintf(err, sizeof(err), "no delivery %s", pl_http_param(req, "id")); /* as store.c */
	respond_store_error(req, PL_ERR_NOT_FOUND, err);
	return false;
}

/* Adds trackingUrl (the customer's link, with its token) when tracking tokens are configured. */
static void add_tracking_url(dlv_t *d, json_t *doc, const char *id)
{
	char *url = pl_auth_track_path(d->auth, id);
	if (url)
		json_object_set_new(doc, "trackingUrl", json_string(url));
	pl_free(url);
}

static void on_delivery(pl_http_req_t *req, void *arg)
{
	json_t *lc;
	if (!admit(arg, req, &lc, NULL))
		return;
	json_t *view = status_delivery_view(lc);
	json_decref(lc);
	if (!view) {
		pl_http_problem(req, 500, "the stored delivery is incomplete", NULL);
		return;
	}
	add_tracking_url(arg, view, pl_http_param(req, "id"));
	respond_json(req, 200, view);
}

static void on_owner(pl_http_req_t *req, void *arg)
{
	json_t *lc;
	if (!admit(arg, req, &lc, NULL))
		return;
	const char *owner = json_string_value(json_object_get(lc, "ownerId"));
	json_t *doc = json_pack("{s:s?, s:s?}", "userId", owner, "accountId", owner);
	json_decref(lc);
	respond_json(req, 200, doc);
}

static void on_status(pl_http_req_t *req, void *arg)
{
	dlv_t *d = arg;
	json_t *lc, *tm;
	if (!admit(d, req, &lc, &tm))
		return;
	json_t *status = status_build(lc, tm, pl_now_ms(), d->default_speed_mps);
	json_decref(lc);
	json_decref(tm);
	if (!status) {
		pl_http_problem(req, 500, "the stored delivery is incomplete", NULL);
		return;
	}
	add_tracking_url(d, status, pl_http_param(req, "id"));
	respond_json(req, 200, status);
}

static void on_history(pl_http_req_t *req, void *arg)
{
	dlv_t *d = arg;
	json_t *entries;
	char err[256] = "";
	if (!admit(d, req, NULL, NULL))
		return;
	pl_err_t e = store_history(d->store, pl_http_param(req, "id"), &entries, err, sizeof(err));
	if (e != PL_OK) {
		respond_store_error(req, e, err);
		return;
	}
	respond_json(req, 200, entries);
}

/* Strict decimal integer (optional '-', 1..9 digits, nothing else). */
static bool parse_int(const char *text, int *out)
{
	if (!text)
		return false;
	const char *p = text + (*text == '-');
	size_t n = strlen(p);
	if (n == 0 || n > 9)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	*out = atoi(text);
	return true;
}

static void check_int(json_t *errors, pl_http_req_t *req, const char *name, int min, int max,
                      int *out)
{
	const char *text = pl_http_query(req, name);
	char reason[96];
	if (!text || !*text)
		snprintf(reason, sizeof(reason), "required: an integer %d..%d", min, max);
	else if (!parse_int(text, out))
		snprintf(reason, sizeof(reason), "must be an integer %d..%d", min, max);
	else if (*out < min || *out > max)
		snprintf(reason, sizeof(reason), "must be between %d and %d", min, max);
	else
		return;
	json_array_append_new(errors, json_pack("{s:s, s:s}", "field", name, "reason", reason));
}

static void on_summary(pl_http_req_t *req, void *arg)
{
	dlv_t *d = arg;
	pl_principal_t p;
	if (!pl_auth_http(d->auth, req, &p))
		return;
	json_t *errors = json_array();
	const char *owner = pl_http_query(req, "ownerId");
	if ((!owner || !*owner) && p.role == PL_ROLE_OWNER)
		owner = p.owner_id; /* an owner's own summary by default */
	if (!owner || !*owner)
		json_array_append_new(errors, json_pack("{s:s, s:s}", "field", "ownerId", "reason",
		                                        "required: the owner's id"));
	int year = 0, month = 0;
	check_int(errors, req, "year", 1, 9999, &year);
	check_int(errors, req, "month", 1, 12, &month);
	if (json_array_size(errors) > 0) {
		char detail[256] = "invalid query:";
		size_t i;
		json_t *err;
		json_array_foreach(errors, i, err)
		{
			size_t n = strlen(detail);
			snprintf(detail + n, sizeof(detail) - n, "%s %s", i ? "," : "",
			         json_string_value(json_object_get(err, "field")));
		}
		char *text = json_dumps(errors, JSON_COMPACT);
		pl_http_problem(req, 400, detail, text);
		free(text);
		json_decref(errors);
		return;
	}
	json_decref(errors);
	if (!pl_auth_http_owner_field(req, &p, "ownerId", owner))
		return;
	long long count = 0;
	char err[256] = "";
	pl_err_t e = store_summary(d->store, owner, year, month, &count, err, sizeof(err));
	if (e != PL_OK) {
		respond_store_error(req, e, err);
		return;
	}
	respond_json(req, 200, json_pack("{s:I}", "count", (json_int_t)count));
}

/* The page and its files: only this service's own script, style and API; no inline script or
 * style, no frame may embed it (clickjacking), no MIME sniffing, no referrer (its URL holds the
 * deliveryId). */
#define TRACK_CSP                                                                                  \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src "    \
	"data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static void track_respond(pl_http_req_t *req, const char *type, const char *body)
{
	pl_http_add_header(req, "Content-Security-Policy", TRACK_CSP);
	pl_http_add_header(req, "X-Content-Type-Options", "nosniff");
	pl_http_add_header(req, "Referrer-Policy", "no-referrer");
	pl_http_add_header(req, "Cache-Control", "no-cache");
	pl_http_respond(req, 200, type, body, strlen(body));
}

static void on_track(pl_http_req_t *req, void *arg)
{
	dlv_t *d = arg;
	pl_principal_t p;
	/* the page holds no data (its requests are admitted one by one): credentials of anyone,
	 * or the delivery's token, which the page passes on to its requests */
	if (!has_track_token(d, req) && !pl_auth_http(d->auth, req, &p))
		return;
	track_respond(req, "text/html; charset=utf-8", track_html);
}

/* The page's style sheet and script hold no data: served to anyone. */
static void on_track_css(pl_http_req_t *req, void *arg)
{
	(void)arg;
	track_respond(req, "text/css; charset=utf-8", track_css);
}

static void on_track_js(pl_http_req_t *req, void *arg)
{
	(void)arg;
	track_respond(req, "text/javascript; charset=utf-8", track_js);
}

/* ---- live streams ------------------------------------------------------------------------- */

static void sub_free(live_sub_t *s)
{
	pl_http_stream_close(s->stream);
	pl_free(s->delivery_id);
	pl_free(s);
}

/* Under live_lock: writes the status to every stream of the delivery that has not seen it;
 * ends and drops the streams that are finished or gone. */
static void deliver_locked(dlv_t *d, const char *id, const json_t *status, const char *event_id,
                           bool finished)
{
	char *text = json_dumps(status, JSON_COMPACT);
	if (!text)
		return; /* not JSON-able: nothing to send (stored statuses are built as JSON) */
	size_t len = 0;
	char *frame = status_sse_frame("status", event_id, text, &len);
	size_t end_len = 0;
	char *end = status_sse_frame("end", NULL, "{}", &end_len);
	for (live_sub_t **pp = &d->subs; *pp;) {
		live_sub_t *s = *pp;
		bool drop = false;
		if (strcmp(s->delivery_id, id) == 0) {
			if (status_id_newer(event_id, s->last_id)) {
				drop = pl_http_stream_write(s->stream, frame, len) != PL_OK;
				snprintf(s->last_id, sizeof(s->last_id), "%s", event_id);
			}
			if (finished && !drop) {
				pl_http_stream_write(s->stream, end, end_len);
				drop = true;
			}
		}
		if (drop || !pl_http_stream_alive(s->stream)) {
			*pp = s->next;
			sub_free(s);
		} else {
			pp = &s->next;
		}
	}
	pl_free(end);
	pl_free(frame);
	free(text);
}

/* Reads the delivery and sends its status to its streams. */
static void refresh(dlv_t *d, const char *id)
{
	json_t *lc, *tm;
	char err[256];
	if (store_get(d->store, id, &lc, &tm, err, sizeof(err)) != PL_OK)
		return; /* Redis away: the subscription's reconnect refreshes everything */
	json_t *status = status_build(lc, tm, pl_now_ms(), d->default_speed_mps);
	char event_id[48];
	status_event_id(lc, tm, event_id);
	bool finished = status_stage_finished(json_string_value(json_object_get(lc, "stage")));
	json_decref(lc);
	json_decref(tm);
	if (!status)
		return;
	pthread_mutex_lock(&d->live_lock);
	deliver_locked(d, id, status, event_id, finished);
	pthread_mutex_unlock(&d->live_lock);
	json_decref(status);
}

void live_changed(const char *id, void *arg)
{
	dlv_t *d = arg;
	if (id) {
		pthread_mutex_lock(&d->live_lock);
		bool watched = false;
		for (live_sub_t *s = d->subs; s && !watched; s = s->next)
			watched = strcmp(s->delivery_id, id) == 0;
		pthread_mutex_unlock(&d->live_lock);
		if (watched)
			refresh(d, id);
		return;
	}
	/* Everything may have changed: refresh each watched delivery once. */
	json_t *ids = json_object();
	pthread_mutex_lock(&d->live_lock);
	for (live_sub_t *s = d->subs; s; s = s->next)
		json_object_set_new(ids, s->delivery_id, json_true());
	pthread_mutex_unlock(&d->live_lock);
	const char *key;
	json_t *v;
	json_object_foreach(ids, key, v)
	{
		(void)v;
		refresh(d, key);
	}
	json_decref(ids);
}

void live_sweep(dlv_t *d)
{
	pthread_mutex_lock(&d->live_lock);
	for (live_sub_t **pp = &d->subs; *pp;) {
		live_sub_t *s = *pp;
		if (!pl_http_stream_alive(s->stream)) {
			*pp = s->next;
			sub_free(s);
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&d->live_lock);
}

void live_close_all(dlv_t *d)
{
	pthread_mutex_lock(&d->live_lock);
	while (d->subs) {
		live_sub_t *s = d->subs;
		d->subs = s->next;
		sub_free(s);
	}
	pthread_mutex_unlock(&d->live_lock);
}

static void on_events(pl_http_req_t *req, void *arg)
{
	dlv_t *d = arg;
	json_t *lc;
	if (!admit(d, req, &lc, NULL)) /* 401 / 404 / 503 before the stream starts */
		return;
	json_decref(lc);
	pl_http_stream_t *stream = pl_http_stream_start(req, SSE_CONTENT_TYPE, ": ping\n\n");
	if (!stream) {
		unsigned status = pl_http_stream_refusal(req);
		pl_http_add_header(req, "Retry-After", "5");
		pl_http_problem(req, status,
		                status == 429 ? "too many live streams open from this address; "
		                                "close one or try again later"
		                              : "too many live streams open; try again later",
		                NULL);
		return;
	}
	static const char retry[] = "retry: 3000\n\n";
	pl_http_stream_write(stream, retry, sizeof(retry) - 1);
	live_sub_t *s = pl_calloc(1, sizeof(*s));
	s->delivery_id = pl_strdup(pl_http_param(req, "id"));
	s->stream = stream;
	pthread_mutex_lock(&d->live_lock);
	s->next = d->subs;
	d->subs = s;
	pthread_mutex_unlock(&d->live_lock);
	/* Registered first, read second: a change between the two is sent twice at worst (the
	 * event id filters it), never lost. */
	refresh(d, pl_http_param(req, "id")); /* s may be gone already */
}

size_t delivery_routes(void *arg, pl_http_route_t *out, size_t max)
{
	const pl_http_route_t routes[] = {
	    {"GET", "/api/deliveries/summary", on_summary, arg},
	    {"GET", "/api/deliveries/public/{id}", on_delivery, arg},
	    {"GET", "/api/deliveries/{id}", on_delivery, arg},
	    {"GET", "/api/deliveries/{id}/owner", on_owner, arg},
	    {"GET", "/api/deliveries/{id}/status", on_status, arg},
	    {"GET", "/api/deliveries/{id}/history", on_history, arg},
	    {"GET", "/api/deliveries/{id}/events", on_events, arg},
	    {"GET", "/track/{id}", on_track, arg},
	    {"GET", "/assets/track.css", on_track_css, arg},
	    {"GET", "/assets/track.js", on_track_js, arg},
	};
	return pl_http_routes_copy(out, max, routes, sizeof(routes) / sizeof(routes[0]));
}
