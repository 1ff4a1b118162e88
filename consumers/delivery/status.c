/* status.c — pure read models of dronepipe-delivery: Delivery view, status with ETAs, history
 * entries, SSE framing (see status.h for the formulas). Owns nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "jsonw.h"
#include "mem.h"
#include "status.h"
#include "timefmt.h"

#define MIN_TELEMETRY_SPEED_MPS 1.0

static const struct {
	const char *name;
	int reference;
	bool finished;
} stages[] = {
    {"Created", 0, false},        {"Scheduled", 0, false},       {"Rescheduled", 1, false},
    {"HeadedToPickup", 2, false}, {"HeadedToDropoff", 3, false}, {"Completed", 4, true},
    {"Cancelled", 5, true},       {"Failed", 5, true},
};

int status_stage_int(const char *stage_name)
{
	for (size_t i = 0; stage_name && i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(stages[i].name, stage_name) == 0)
			return stages[i].reference;
	return -1;
}

bool status_stage_finished(const char *stage_name)
{
	for (size_t i = 0; stage_name && i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(stages[i].name, stage_name) == 0)
			return stages[i].finished;
	return false;
}

/* ---- small accessors (absent or null -> default) ------------------------------------------ */

static const char *str_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool int_of(const json_t *obj, const char *key, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

static bool num_of(const json_t *obj, const char *key, double *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

static json_t *time_or_null(int64_t ms)
{
	char text[32];
	return pl_time_format(ms, text) == PL_OK ? json_string(text) : json_null();
}

static json_t *point_json(double lat, double lon, double alt)
{
	return json_pack("{s:f, s:f, s:f}", "altitude", alt, "latitude", lat, "longitude", lon);
}

/* A GeoPoint object of the snapshot, reordered as API.md writes it. */
static json_t *geo_view(const json_t *geo)
{
	double lat, lon, alt = 0.0;
	if (!num_of(geo, "latitude", &lat) || !num_of(geo, "longitude", &lon))
		return json_null();
	num_of(geo, "altitude", &alt);
	return point_json(lat, lon, alt);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* ---- views -------------------------------------------------------------------------------- */

json_t *status_delivery_view(const json_t *lc)
{
	const char *id = str_of(lc, "deliveryId"), *stage = str_of(lc, "stage");
	if (!id || !stage)
		return NULL;
	const char *owner = str_of(lc, "ownerId");
	json_t *expedited = json_object_get(lc, "expedited");
	return json_pack("{s:s, s:{s:o, s:o}, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:i, s:s}", "id",
	                 id, "owner", "userId", str_or_null(owner), "accountId", str_or_null(owner),
	                 "pickup", geo_view(json_object_get(lc, "pickup")), "dropoff",
	                 geo_view(json_object_get(lc, "dropoff")), "deadline",
	                 str_or_null(str_of(lc, "deadline")), "expedited", json_is_true(expedited),
	                 "confirmationRequired", str_or_null(str_of(lc, "confirmationRequired")),
	                 "droneId", str_or_null(str_of(lc, "droneId")), "packageId",
	                 str_or_null(str_of(lc, "packageId")), "stage", status_stage_int(stage),
	                 "stageName", stage);
}

static bool picked_up(const char *stage, const char *phase)
{
	if (stage && strcmp(stage, "HeadedToDropoff") == 0)
		return true;
	return phase && (strcmp(phase, "ToDropoff") == 0 || strcmp(phase, "Arrived") == 0);
}

static json_t *eta_after(int64_t now_ms, double metres, double speed)
{
	return time_or_null(now_ms + (int64_t)llround(metres / speed * 1000.0));
}

json_t *status_build(const json_t *lc, const json_t *tm, int64_t now_ms, double default_speed)
{
	const char *id = str_of(lc, "deliveryId"), *stage = str_of(lc, "stage");
	if (!id || !stage)
		return NULL;
	bool finished = status_stage_finished(stage);
	double tlat = 0.0, tlon = 0.0, talt = 0.0, speed = 0.0;
	bool have_tm = tm && num_of(tm, "latitude", &tlat) && num_of(tm, "longitude", &tlon);
	const char *phase = have_tm ? str_of(tm, "phase") : NULL;
	if (have_tm)
		num_of(tm, "altitude", &talt);
	if (!have_tm || !num_of(tm, "speedMps", &speed) || !(speed >= MIN_TELEMETRY_SPEED_MPS))
		speed = default_speed > 0 ? default_speed : 15.0;

	int64_t snap_pickup_eta = 0, snap_delivery_eta = 0;
	bool has_snap_pickup = int_of(lc, "pickupEta", &snap_pickup_eta);
	bool has_snap_delivery = int_of(lc, "deliveryEta", &snap_delivery_eta);
	json_t *pickup_eta = json_null(), *delivery_eta = json_null();
	double plat = 0.0, plon = 0.0, dlat = 0.0, dlon = 0.0;
	const json_t *pickup = json_object_get(lc, "pickup"),
	             *dropoff = json_object_get(lc, "dropoff");
	bool have_points =
	    num_of(pickup, "latitude", &plat) && num_of(pickup, "longitude", &plon) &&
	    num_of(dropoff, "latitude", &dlat) && num_of(dropoff, "longitude", &dlon);
	if (finished) {
		/* both stay null */
	} else if (have_tm && have_points) {
		if (picked_up(stage, phase)) {
			if (has_snap_pickup) {
				json_decref(pickup_eta);
				pickup_eta = time_or_null(snap_pickup_eta);
			}
			json_decref(delivery_eta);
			delivery_eta =
			    eta_after(now_ms, pl_geo_distance_m(tlat, tlon, dlat, dlon), speed);
		} else {
			double to_pickup = pl_geo_distance_m(tlat, tlon, plat, plon);
			double leg = pl_geo_distance_m(plat, plon, dlat, dlon);
			json_decref(pickup_eta);
			json_decref(delivery_eta);
			pickup_eta = eta_after(now_ms, to_pickup, speed);
			delivery_eta = eta_after(now_ms, to_pickup + leg, speed);
		}
	} else {
		if (has_snap_pickup) {
			json_decref(pickup_eta);
			pickup_eta = time_or_null(snap_pickup_eta);
		}
		if (has_snap_delivery) {
			json_decref(delivery_eta);
			delivery_eta = time_or_null(snap_delivery_eta);
		}
	}

	int64_t updated = 0, tm_time = 0;
	int_of(lc, "time", &updated);
	if (have_tm && int_of(tm, "time", &tm_time) && tm_time > updated)
		updated = tm_time;
	const char *reason = str_of(lc, "reason");
	return json_pack("{s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "deliveryId", id, "stage",
	                 status_stage_int(stage), "stageName", stage, "lastKnownLocation",
	                 have_tm ? point_json(tlat, tlon, talt) : json_null(), "pickupETA",
	                 pickup_eta, "deliveryETA", delivery_eta, "updatedAt",
	                 time_or_null(updated), "phase", str_or_null(phase), "reason",
	                 str_or_null(reason));
}

static const char *q(const char *s)
{
	return s ? s : "?";
}

/* The sentence naming what happened. */
static char *detail_of(const status_event_t *e)
{
	const char *stage = e->stage, *drone = q(e->drone_id);
	if (strcmp(stage, "Created") == 0)
		return pl_asprintf("delivery requested by %s: %s -> %s", q(e->owner_id),
		                   q(e->pickup_location), q(e->dropoff_location));
	if (strcmp(stage, "Scheduled") == 0)
		return pl_asprintf("drone %s assigned", drone);
	if (strcmp(stage, "Rescheduled") == 0) {
		char when[32] = "?";
		if (e->has_pickup_time)
			pl_time_format(e->pickup_time, when);
		return pl_asprintf("rescheduled: %s -> %s, pickup at %s", q(e->pickup_location),
		                   q(e->dropoff_location), when);
	}
	if (strcmp(stage, "HeadedToPickup") == 0)
		return pl_asprintf("drone %s headed to the pickup", drone);
	if (strcmp(stage, "HeadedToDropoff") == 0)
		return pl_asprintf("package picked up; drone %s headed to the drop-off", drone);
	if (strcmp(stage, "Completed") == 0)
		return pl_strdup("delivered");
	if (strcmp(stage, "Cancelled") == 0 || strcmp(stage, "Failed") == 0)
		return pl_asprintf("%s: %s", strcmp(stage, "Failed") == 0 ? "failed" : "cancelled",
		                   e->reason ? e->reason : "no reason given");
	return pl_asprintf("stage %s", stage);
}

static void put_key(pl_jsonw_t *w, const char *key)
{
	pl_jsonw_string(w, key, strlen(key));
	pl_jsonw_char(w, ':');
}

static void put_str_or_null(pl_jsonw_t *w, const char *s)
{
	if (s)
		pl_jsonw_string(w, s, strlen(s));
	else
		pl_jsonw_raw(w, "null", 4);
}

char *status_history_entry(const status_event_t *e)
{
	if (!e->stage)
		return NULL;
	char *detail = detail_of(e), when[32];
	pl_jsonw_t w;
	pl_jsonw_init(&w, PL_JSONW_SORTED);
	/* keys in byte order, as pl_json_text writes an object */
	pl_jsonw_char(&w, '{');
	put_key(&w, "detail");
	put_str_or_null(&w, detail);
	pl_jsonw_char(&w, ',');
	put_key(&w, "eventId");
	put_str_or_null(&w, e->event_id);
	pl_jsonw_char(&w, ',');
	put_key(&w, "stage");
	pl_jsonw_integer(&w, status_stage_int(e->stage));
	pl_jsonw_char(&w, ',');
	put_key(&w, "stageName");
	put_str_or_null(&w, e->stage);
	pl_jsonw_char(&w, ',');
	put_key(&w, "time");
	put_str_or_null(&w, pl_time_format(e->time_ms, when) == PL_OK ? when : NULL);
	pl_jsonw_char(&w, ',');
	put_key(&w, "version");
	pl_jsonw_integer(&w, e->version);
	pl_jsonw_char(&w, '}');
	pl_free(detail);
	return pl_jsonw_finish(&w, NULL);
}

/* ---- event ids ---------------------------------------------------------------------------- */

void status_event_id(const json_t *lc, const json_t *tm, char out[48])
{
	int64_t version = 0, seq = -1; /* telemetry seq starts at 0: count it from 1 */
	int_of(lc, "version", &version);
	if (tm)
		int_of(tm, "seq", &seq);
	snprintf(out, 48, "%" PRId64 ".%" PRId64, version, seq + 1);
}

static void parse_id(const char *id, long long *version, long long *seq)
{
	char *end = NULL;
	*version = -1;
	*seq = -1;
	if (!id || !*id)
		return;
	*version = strtoll(id, &end, 10);
	*seq = (end && *end == '.') ? strtoll(end + 1, NULL, 10) : 0;
}

bool status_id_newer(const char *a, const char *b)
{
	long long av, as, bv, bs;
	parse_id(a, &av, &as);
	parse_id(b, &bv, &bs);
	return av > bv || (av == bv && as > bs);
}

/* ---- SSE ---------------------------------------------------------------------------------- */

typedef struct buf {
	char *p;
	size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = pl_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_field(buf_t *b, const char *name, const char *value)
{
	buf_add(b, name, strlen(name));
	buf_add(b, ": ", 2);
	for (const char *c = value; *c; c++)
		if (*c != '\r' && *c != '\n')
			buf_add(b, c, 1);
	buf_add(b, "\n", 1);
}

char *status_sse_frame(const char *event, const char *id, const char *data, size_t *len)
{
	buf_t b = {0};
	buf_add(&b, "", 0);
	if (event && *event)
		buf_field(&b, "event", event);
	if (id && *id)
		buf_field(&b, "id", id);
	const char *line = data ? data : "";
	for (;;) {
		size_t n = strcspn(line, "\r\n");
		buf_add(&b, "data: ", 6);
		buf_add(&b, line, n);
		buf_add(&b, "\n", 1);
		if (!line[n])
			break;
		line += n + ((line[n] == '\r' && line[n + 1] == '\n') ? 2 : 1);
	}
	buf_add(&b, "\n", 1);
	if (len)
		*len = b.len;
	return b.p;
}
