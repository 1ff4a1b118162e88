/* sim.c — flight state, the pure leg step, telemetry mapping and the per-partition flight table
 * (see sim.h). The table is an open-addressing hash (linear probing, backward-shift deletion)
 * of owned sim_flight_t pointers; its capacity is a power of two, at most half full. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "geo.h"
#include "kafka.h"
#include "mem.h"
#include "sim.h"

/* Namespace of the simulator's deterministic event ids (UUID v5). */
#define SIM_ID_NS "8c1f7a52-3e0b-4d6a-b9c4-2f5e8d7a1b36"

static const char *const phase_names[] = {"ToPickup", "ToDropoff", "Arrived"};

const char *sim_phase_name(sim_phase_t phase)
{
	return (unsigned)phase < 3 ? phase_names[phase] : "?";
}

const char *sim_arrival_name(sim_arrival_t arrival)
{
	return arrival == SIM_ARRIVAL_PICKUP    ? "AtPickup"
	       : arrival == SIM_ARRIVAL_DROPOFF ? "AtDropoff"
	                                        : "?";
}

double sim_elapsed_s(int64_t wall_ms, double time_scale)
{
	return wall_ms > 0 ? (double)wall_ms * time_scale / 1000.0 : 0;
}

const sim_point_t *sim_target(const sim_flight_t *f)
{
	return f->phase == SIM_TO_PICKUP ? &f->pickup : &f->dropoff;
}

sim_arrival_t sim_advance(sim_flight_t *f, double sim_seconds, double speed_mps, double *leftover_s)
{
	if (leftover_s)
		*leftover_s = 0;
	if (f->state != SIM_FLYING || f->phase == SIM_ARRIVED)
		return SIM_ARRIVAL_NONE;
	const sim_point_t *to = sim_target(f);
	sim_arrival_t arrival =
	    f->phase == SIM_TO_PICKUP ? SIM_ARRIVAL_PICKUP : SIM_ARRIVAL_DROPOFF;
	double remaining = pl_geo_distance_m(f->position.latitude, f->position.longitude,
	                                     to->latitude, to->longitude);
	double step = sim_seconds > 0 ? sim_seconds * speed_mps : 0;
	if (remaining <= SIM_ARRIVAL_TOLERANCE_M || step >= remaining - SIM_ARRIVAL_TOLERANCE_M) {
		/* on the end point, exactly: no overshoot, no drift past it */
		double used = remaining > 0 && speed_mps > 0 ? remaining / speed_mps : 0;
		if (leftover_s)
			*leftover_s = sim_seconds > used ? sim_seconds - used : 0;
		f->position = *to;
		return arrival;
	}
	if (step <= 0)
		return SIM_ARRIVAL_NONE;
	/* The current position is on the great circle from the leg's start to its end, so moving
	 * along the great circle from here to the end keeps the same path. */
	pl_geo_interpolate(f->position.latitude, f->position.longitude, to->latitude, to->longitude,
	                   step / remaining, &f->position.latitude, &f->position.longitude);
	f->position.altitude = SIM_CRUISE_ALTITUDE_M;
	return SIM_ARRIVAL_NONE;
}

void sim_arrival_done(sim_flight_t *f, sim_arrival_t arrival, int64_t now_ms)
{
	if (arrival == SIM_ARRIVAL_PICKUP && f->phase == SIM_TO_PICKUP) {
		f->position = f->pickup;
		f->phase = SIM_TO_DROPOFF;
	} else if (arrival == SIM_ARRIVAL_DROPOFF && f->phase == SIM_TO_DROPOFF) {
		f->position = f->dropoff;
		f->phase = SIM_ARRIVED;
		f->state = SIM_DONE;
		f->touched_ms = now_ms;
	}
}

/* ---- JSON mapping ---------------------------------------------------------------------------- */

static bool number(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

bool sim_point_from_json(const json_t *point, sim_point_t *out)
{
	sim_point_t p = {0};
	if (!json_is_object(point) || !number(json_object_get(point, "latitude"), &p.latitude) ||
	    !number(json_object_get(point, "longitude"), &p.longitude))
		return false;
	if (p.latitude < -90 || p.latitude > 90 || p.longitude < -180 || p.longitude > 180)
		return false;
	const json_t *alt = json_object_get(point, "altitude");
	if (alt && !json_is_null(alt) && !number(alt, &p.altitude))
		return false;
	*out = p;
	return true;
}

static bool copy_id(char dst[SIM_ID_MAX], const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) >= SIM_ID_MAX)
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

pl_err_t sim_flight_from_assigned(const json_t *a, sim_flight_t *f, char *errstr,
                                  size_t errstr_size)
{
	memset(f, 0, sizeof(*f));
	const char *bad = NULL;
	if (!copy_id(f->delivery_id, json_object_get(a, "deliveryId")))
		bad = "deliveryId";
	else if (!copy_id(f->drone_id, json_object_get(a, "droneId")))
		bad = "droneId";
	else if (!sim_point_from_json(json_object_get(a, "position"), &f->position))
		bad = "position";
	else if (!sim_point_from_json(json_object_get(a, "pickup"), &f->pickup))
		bad = "pickup";
	else if (!sim_point_from_json(json_object_get(a, "dropoff"), &f->dropoff))
		bad = "dropoff";
	if (bad) {
		snprintf(errstr, errstr_size, "DroneAssigned: %s missing, too long or out of range",
		         bad);
		return PL_ERR_SCHEMA;
	}
	f->state = SIM_FLYING;
	f->phase = SIM_TO_PICKUP;
	return PL_OK;
}

pl_err_t sim_flight_from_telemetry(const json_t *t, sim_flight_t *f, char *errstr,
                                   size_t errstr_size)
{
	memset(f, 0, sizeof(*f));
	const char *bad = NULL;
	const char *phase = json_string_value(json_object_get(t, "phase"));
	const json_t *seq = json_object_get(t, "seq");
	sim_point_t at = {0};
	if (!copy_id(f->delivery_id, json_object_get(t, "deliveryId")))
		bad = "deliveryId";
	else if (!copy_id(f->drone_id, json_object_get(t, "droneId")))
		bad = "droneId";
	else if (!number(json_object_get(t, "latitude"), &at.latitude) ||
	         !number(json_object_get(t, "longitude"), &at.longitude) ||
	         !number(json_object_get(t, "altitude"), &at.altitude) || fabs(at.latitude) > 90 ||
	         fabs(at.longitude) > 180)
		bad = "position";
	else if (!sim_point_from_json(json_object_get(t, "pickup"), &f->pickup))
		bad = "pickup";
	else if (!sim_point_from_json(json_object_get(t, "dropoff"), &f->dropoff))
		bad = "dropoff";
	else if (!json_is_integer(seq) || json_integer_value(seq) < 0)
		bad = "seq";
	else if (!phase || (strcmp(phase, "ToPickup") && strcmp(phase, "ToDropoff") &&
	                    strcmp(phase, "Arrived")))
		bad = "phase";
	if (bad) {
		snprintf(errstr, errstr_size, "DroneTelemetry: %s missing or invalid", bad);
		return PL_ERR_SCHEMA;
	}
	f->position = at;
	f->seq = json_integer_value(seq) + 1;
	f->phase = !strcmp(phase, "ToPickup")    ? SIM_TO_PICKUP
	           : !strcmp(phase, "ToDropoff") ? SIM_TO_DROPOFF
	                                         : SIM_ARRIVED;
	f->state = f->phase == SIM_ARRIVED ? SIM_DONE : SIM_FLYING;
	return PL_OK;
}

static json_t *point_json(const sim_point_t *p)
{
	return json_pack("{s:f, s:f, s:f}", "latitude", p->latitude, "longitude", p->longitude,
	                 "altitude", p->altitude);
}

json_t *sim_telemetry_json(const sim_flight_t *f, double speed_mps, int64_t now_ms,
                           const char *event_id)
{
	const sim_point_t *to = sim_target(f);
	bool moving = f->state == SIM_FLYING && (f->position.latitude != to->latitude ||
	                                         f->position.longitude != to->longitude);
	return json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:I, s:o, s:o}", "eventId",
	                 event_id, "deliveryId", f->delivery_id, "droneId", f->drone_id, "phase",
	                 sim_phase_name(f->phase), "latitude", f->position.latitude, "longitude",
	                 f->position.longitude, "altitude", f->position.altitude, "speedMps",
	                 moving ? speed_mps : 0.0, "time", (json_int_t)now_ms, "seq",
	                 (json_int_t)f->seq, "pickup", point_json(&f->pickup), "dropoff",
	                 point_json(&f->dropoff));
}

void sim_telemetry_id(const char *delivery_id, int64_t seq, char out[37])
{
	char name[SIM_ID_MAX + 48];
	int n = snprintf(name, sizeof(name), "%s|telemetry|%lld", delivery_id, (long long)seq);
	pl_uuid_v5(SIM_ID_NS, name, (size_t)n, out);
}

void sim_arrival_id(const char *delivery_id, sim_arrival_t arrival, char out[37])
{
	char name[SIM_ID_MAX + 48];
	int n =
	    snprintf(name, sizeof(name), "%s|arrived|%s", delivery_id, sim_arrival_name(arrival));
	pl_uuid_v5(SIM_ID_NS, name, (size_t)n, out);
}

/* ---- table ----------------------------------------------------------------------------------- */

struct sim_table {
	sim_flight_t **slots; /* NULL = empty */
	size_t cap;           /* power of two */
	size_t size;
};

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

sim_table_t *sim_table_new(void)
{
	sim_table_t *t = pl_calloc(1, sizeof(*t));
	t->cap = 16;
	t->slots = pl_calloc(t->cap, sizeof(*t->slots));
	return t;
}

void sim_table_destroy(sim_table_t *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		pl_free(t->slots[i]);
	pl_free(t->slots);
	pl_free(t);
}

static size_t find_slot(const sim_table_t *t, const char *id)
{
	size_t i = (size_t)hash_id(id) & (t->cap - 1);
	while (t->slots[i] && strcmp(t->slots[i]->delivery_id, id))
		i = (i + 1) & (t->cap - 1);
	return i;
}

sim_flight_t *sim_table_get(sim_table_t *t, const char *id)
{
	return t->slots[find_slot(t, id)];
}

static void grow(sim_table_t *t)
{
	sim_flight_t **old = t->slots;
	size_t old_cap = t->cap;
	t->cap *= 2;
	t->slots = pl_calloc(t->cap, sizeof(*t->slots));
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			t->slots[find_slot(t, old[i]->delivery_id)] = old[i];
	pl_free(old);
}

sim_flight_t *sim_table_add(sim_table_t *t, const char *id)
{
	size_t i = find_slot(t, id);
	if (t->slots[i])
		return t->slots[i];
	if ((t->size + 1) * 2 > t->cap) {
		grow(t);
		i = find_slot(t, id);
	}
	sim_flight_t *f = pl_calloc(1, sizeof(*f));
	snprintf(f->delivery_id, sizeof(f->delivery_id), "%s", id);
	t->slots[i] = f;
	t->size++;
	return f;
}

void sim_table_remove(sim_table_t *t, const char *id)
{
	size_t i = find_slot(t, id);
	if (!t->slots[i])
		return;
	pl_free(t->slots[i]);
	t->slots[i] = NULL;
	t->size--;
	/* backward-shift: move later members of the probe run into the hole when their home slot
	 * is not between the hole and themselves */
	size_t mask = t->cap - 1;
	for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
		size_t home = (size_t)hash_id(t->slots[j]->delivery_id) & mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = NULL;
		i = j;
	}
}

size_t sim_table_size(const sim_table_t *t)
{
	return t->size;
}

sim_flight_t *sim_table_next(sim_table_t *t, size_t *cursor)
{
	while (*cursor < t->cap) {
		sim_flight_t *f = t->slots[(*cursor)++];
		if (f)
			return f;
	}
	return NULL;
}

sim_start_t sim_table_start(sim_table_t *t, const sim_flight_t *assigned, int64_t now_ms,
                            sim_flight_t **out)
{
	sim_flight_t *f = sim_table_add(t, assigned->delivery_id);
	if (out)
		*out = f;
	switch (f->state) {
	case SIM_FLYING:
		return SIM_START_FLYING;
	case SIM_DONE:
		return SIM_START_DONE;
	case SIM_STOPPED:
		return SIM_START_STOPPED;
	case SIM_PENDING:
		break;
	}
	sim_flight_t started = *assigned;
	if (f->route_version > 0) { /* a lifecycle event told a newer route than the assignment */
		started.pickup = f->pickup;
		started.dropoff = f->dropoff;
		started.route_version = f->route_version;
	}
	started.state = SIM_FLYING;
	started.phase = SIM_TO_PICKUP;
	started.seq = 0;
	started.last_advance_ms = now_ms;
	started.next_telemetry_ms = now_ms;
	started.touched_ms = now_ms;
	*f = started;
	return SIM_START_NEW;
}
