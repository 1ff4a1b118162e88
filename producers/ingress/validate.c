/* validate.c — request-body validation for the ingress: a depth/NUL pre-scan,
 * jansson parsing, field-by-field checks that collect every error, and the
 * Avro-ready event object. Owns the ingress_problem_t helpers. No global state.
 */
#include "validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "geo.h"
#include "http.h"
#include "mem.h"
#include "text.h"
#include "timefmt.h"

#define BODY_FIELD "body"
#define TIME_REASON                                                                                \
	"must be an ISO-8601 date-time like 2026-11-27T10:00:00Z or epoch "                        \
	"milliseconds"

static const char *const confirmation_types[] = {"FingerPrint", "Picture", "Voice", "None"};
static const char *const package_sizes[] = {"Small", "Medium", "Large"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- problem
 * ----------------------------------------------------------------------------
 */

/* Field names and reasons quote request text (jansson's error text may quote raw bytes of the
 * body): made safe by the one sanitising path, pl_text_clean. */
static char *clean_take(char *s)
{
	char *c = pl_text_clean_dup(s, strlen(s), PL_HTTP_DETAIL_MAX);
	pl_free(s);
	return c;
}

static char *vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0)
		n = 0;
	char *s = pl_malloc((size_t)n + 1);
	s[0] = '\0';
	vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return clean_take(s);
}

void ingress_problem_add(ingress_problem_t *problem, const char *field, const char *reason_fmt, ...)
{
	if (problem->error_count == problem->error_capacity) {
		size_t cap = problem->error_capacity ? problem->error_capacity * 2 : 8;
		problem->errors = pl_realloc(problem->errors, cap * sizeof(*problem->errors));
		problem->error_capacity = cap;
	}
	ingress_field_error_t *e = &problem->errors[problem->error_count++];
	e->field = pl_text_clean_dup(field, strlen(field), 256);
	va_list ap;
	va_start(ap, reason_fmt);
	e->reason = vformat(reason_fmt, ap);
	va_end(ap);
	if (problem->status == 0)
		problem->status = 400;
}

void ingress_problem_set_detail(ingress_problem_t *problem, const char *detail)
{
	pl_free(problem->detail);
	problem->detail = pl_text_clean_dup(detail, strlen(detail), PL_HTTP_DETAIL_MAX);
}

void ingress_problem_reset(ingress_problem_t *problem)
{
	if (!problem)
		return;
	for (size_t i = 0; i < problem->error_count; i++) {
		pl_free(problem->errors[i].field);
		pl_free(problem->errors[i].reason);
	}
	problem->error_count = 0;
	pl_free(problem->detail);
	problem->detail = NULL;
	problem->status = 0;
}

void ingress_problem_free(ingress_problem_t *problem)
{
	if (!problem)
		return;
	ingress_problem_reset(problem);
	pl_free(problem->errors);
	problem->errors = NULL;
	problem->error_capacity = 0;
}

json_t *ingress_problem_errors_array(const ingress_problem_t *problem)
{
	json_t *array = json_array();
	for (size_t i = 0; problem && i < problem->error_count; i++)
		json_array_append_new(array,
		                      json_pack("{s:s, s:s}", "field", problem->errors[i].field,
		                                "reason", problem->errors[i].reason));
	return array;
}

char *ingress_problem_errors_json(const ingress_problem_t *problem)
{
	json_t *array = ingress_problem_errors_array(problem);
	/* json_dumpb into our own buffer: the text is then pl_free-able like
	 * everything else. */
	size_t n = json_dumpb(array, NULL, 0, JSON_COMPACT);
	char *text = pl_malloc(n + 1);
	json_dumpb(array, text, n, JSON_COMPACT);
	text[n] = '\0';
	json_decref(array);
	return text;
}

static void body_error(ingress_problem_t *problem, const char *reason, const char *detail)
{
	ingress_problem_add(problem, BODY_FIELD, "%s", reason);
	ingress_problem_set_detail(problem, detail);
}

/* ---- body
 * -------------------------------------------------------------------------------
 */

/* Depth and NUL scan without recursion; false (problem set) when the body must
 * be refused. */
static bool prescan(const char *body, size_t len, ingress_problem_t *problem)
{
	size_t depth = 0;
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < len; i++) {
		char c = body[i];
		if (c == '\0') {
			char *d = pl_asprintf("The request body contains a NUL byte at offset %zu; "
			                      "NUL is not allowed in JSON text or strings.",
			                      i);
			body_error(problem, "contains a NUL byte", d);
			pl_free(d);
			return false;
		}
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > INGRESS_MAX_DEPTH) {
				char *d =
				    pl_asprintf("The request body nests objects or arrays deeper "
				                "than %d levels (at offset %zu).",
				                INGRESS_MAX_DEPTH, i);
				body_error(problem, "nests deeper than 32 levels", d);
				pl_free(d);
				return false;
			}
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/* The body as a JSON object (new reference), or NULL with the problem set. */
static json_t *parse_body(const char *body, size_t len, ingress_problem_t *problem)
{
	if (!body)
		len = 0;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
		i++;
	if (i == len) {
		body_error(problem, "is empty",
		           "The request body is empty; send a JSON object with the fields.");
		return NULL;
	}
	if (!prescan(body, len, problem))
		return NULL;
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		const char *reason = "is not valid JSON", *what = "is not valid JSON";
		switch (json_error_code(&jerr)) {
		case json_error_invalid_utf8:
			reason = what = "is not valid UTF-8";
			break;
		case json_error_null_character:
			reason = "contains \\u0000 in a string";
			what = "contains \\u0000 (NUL) in a string, which is not allowed";
			break;
		case json_error_duplicate_key:
			reason = "has a duplicate object key";
			what = "has an object with the same key twice";
			break;
		case json_error_numeric_overflow:
			reason = "has a number out of range";
			what = "has a number too large to represent";
			break;
		default:
			break;
		}
		char *d = pl_asprintf("The request body %s: %s (line %d, column %d).", what,
		                      jerr.text, jerr.line, jerr.column);
		body_error(problem, reason, d);
		pl_free(d);
		return NULL;
	}
	if (!json_is_object(root)) {
		char *r = pl_asprintf("must be a JSON object (got %s)", type_name(root));
		char *d = pl_asprintf("The request body must be a JSON object, not a JSON %s.",
		                      type_name(root));
		body_error(problem, r, d);
		pl_free(r);
		pl_free(d);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- fields
 * -----------------------------------------------------------------------------
 */

typedef enum got { ABSENT, PRESENT, BAD } got_t;

/* The member named by the last component of the dotted path `field`. */
static json_t *member(const json_t *object, const char *field)
{
	const char *dot = strrchr(field, '.');
	return json_object_get(object, dot ? dot + 1 : field);
}

static got_t get_value(ingress_problem_t *problem, const json_t *object, const char *field,
                       bool required, json_t **value)
{
	*value = member(object, field);
	if (*value && !json_is_null(*value))
		return PRESENT;
	if (!required)
		return ABSENT;
	ingress_problem_add(problem, field, "is required");
	return BAD;
}

static size_t utf8_chars(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

static got_t get_string(ingress_problem_t *problem, const json_t *object, const char *field,
                        bool required, size_t min_chars, size_t max_chars, const char **out)
{
	json_t *v;
	got_t got = get_value(problem, object, field, required, &v);
	if (got != PRESENT)
		return got;
	if (!json_is_string(v)) {
		ingress_problem_add(problem, field, "must be a string (got %s)", type_name(v));
		return BAD;
	}
	size_t chars = utf8_chars(json_string_value(v), json_string_length(v));
	if (chars < min_chars) {
		ingress_problem_add(problem, field, "must not be empty");
		return BAD;
	}
	if (chars > max_chars) {
		ingress_problem_add(problem, field, "must be at most %zu characters (got %zu)",
		                    max_chars, chars);
		return BAD;
	}
	*out = json_string_value(v);
	return PRESENT;
}

static got_t get_enum(ingress_problem_t *problem, const json_t *object, const char *field,
                      bool required, const char *const *symbols, size_t count, const char **out)
{
	char list[128] = "";
	for (size_t i = 0; i < count; i++) {
		strcat(list, i ? ", " : "");
		strcat(list, symbols[i]);
	}
	json_t *v;
	got_t got = get_value(problem, object, field, required, &v);
	if (got != PRESENT)
		return got;
	if (!json_is_string(v)) {
		ingress_problem_add(problem, field, "must be a string, one of %s (got %s)", list,
		                    type_name(v));
		return BAD;
	}
	const char *s = json_string_value(v);
	for (size_t i = 0; i < count; i++) {
		if (strcmp(s, symbols[i]) == 0) {
			*out = symbols[i];
			return PRESENT;
		}
	}
	for (size_t i = 0; i < count; i++) {
		if (strcasecmp(s, symbols[i]) == 0) {
			ingress_problem_add(problem, field,
			                    "must be one of %s (case-sensitive: did you mean %s?)",
			                    list, symbols[i]);
			return BAD;
		}
	}
	ingress_problem_add(problem, field, "must be one of %s", list);
	return BAD;
}

/* A date-time: an RFC 3339 string or integer epoch milliseconds, 1970..9999. */
static got_t get_time(ingress_problem_t *problem, const json_t *object, const char *field,
                      bool required, int64_t *out)
{
	json_t *v;
	got_t got = get_value(problem, object, field, required, &v);
	if (got != PRESENT)
		return got;
	int64_t ms;
	if (json_is_integer(v)) {
		ms = json_integer_value(v);
		if (ms < 0 || ms > PL_TIME_MAX_MS) {
			ingress_problem_add(
			    problem, field,
			    "must be epoch milliseconds between 0 and %lld (got %lld)",
			    (long long)PL_TIME_MAX_MS, (long long)ms);
			return BAD;
		}
	} else if (json_is_string(v)) {
		if (pl_time_parse(json_string_value(v), &ms) != PL_OK) {
			ingress_problem_add(problem, field, "%s", TIME_REASON);
			return BAD;
		}
		if (ms < 0) {
			ingress_problem_add(problem, field,
			                    "must not be before 1970-01-01T00:00:00Z");
			return BAD;
		}
	} else {
		ingress_problem_add(problem, field, TIME_REASON " (got %s%s)",
		                    json_is_real(v) ? "a fractional " : "", type_name(v));
		return BAD;
	}
	*out = ms;
	return PRESENT;
}

/* Shortest text that reads back as the same double ("100000.5", not "100000" as %g gives). */
static const char *number_text(double d, char buf[32])
{
	for (int precision = 6; precision < 17; precision++) {
		snprintf(buf, 32, "%.*g", precision, d);
		if (strtod(buf, NULL) == d)
			return buf;
	}
	snprintf(buf, 32, "%.17g", d);
	return buf;
}

static got_t get_number(ingress_problem_t *problem, const json_t *object, const char *field,
                        bool required, double min, double max, double *out)
{
	json_t *v;
	got_t got = get_value(problem, object, field, required, &v);
	if (got != PRESENT)
		return got;
	if (!json_is_number(v)) {
		ingress_problem_add(problem, field, "must be a number (got %s)", type_name(v));
		return BAD;
	}
	double d = json_number_value(v);
	if (!isfinite(d)) {
		ingress_problem_add(problem, field, "must be a finite number");
		return BAD;
	}
	char got_text[32];
	if (d < min) {
		ingress_problem_add(problem, field, "must be a number >= %g (got %s)", min,
		                    number_text(d, got_text));
		return BAD;
	}
	if (d > max) {
		ingress_problem_add(problem, field, "must be a number <= %g (got %s)", max,
		                    number_text(d, got_text));
		return BAD;
	}
	*out = d + 0.0; /* -0 -> 0 */
	return PRESENT;
}

static got_t get_object(ingress_problem_t *problem, const json_t *object, const char *field,
                        bool required, json_t **out)
{
	got_t got = get_value(problem, object, field, required, out);
	if (got == PRESENT && !json_is_object(*out)) {
		ingress_problem_add(problem, field, "must be an object (got %s)", type_name(*out));
		return BAD;
	}
	return got;
}

static json_t *geo_point(double lat, double lon, double alt)
{
	return json_pack("{s:f, s:f, s:f}", "latitude", lat, "longitude", lon, "altitude", alt);
}

/* A location string, resolved; sets event[field] and event[point_name] when
 * PRESENT. */
static got_t add_location(ingress_problem_t *problem, const json_t *object, const char *field,
                          const char *point_name, bool required, json_t *event)
{
	const char *text;
	got_t got = get_string(problem, object, field, required, 1, INGRESS_LOCATION_MAX, &text);
	if (got != PRESENT)
		return got;
	double lat, lon;
	if (pl_geo_resolve(text, &lat, &lon) != PL_OK) {
		if (text[strspn(text, " \t\r\n\v\f")] == '\0')
			ingress_problem_add(problem, field, "must not be blank");
		else
			ingress_problem_add(problem, field,
			                    "looks like \"lat,lon\" but is out of range (latitude "
			                    "-90..90, longitude -180..180)");
		return BAD;
	}
	json_object_set_new(event, field, json_string(text));
	json_object_set_new(event, point_name, geo_point(lat, lon, 0.0));
	return PRESENT;
}

/* Ends a validation: hands out the event, or drops it and writes the detail. */
static pl_err_t finish(ingress_problem_t *problem, json_t *event, json_t **out)
{
	if (problem->error_count == 0) {
		*out = event;
		return PL_OK;
	}
	json_decref(event);
	if (!problem->detail) {
		size_t cap = 64;
		for (size_t i = 0; i < problem->error_count; i++)
			cap += strlen(problem->errors[i].field) + 2;
		char *d = pl_malloc(cap);
		int n =
		    snprintf(d, cap, "The request has %zu invalid field%s: ", problem->error_count,
		             problem->error_count == 1 ? "" : "s");
		for (size_t i = 0; i < problem->error_count && n > 0; i++)
			n += snprintf(d + n, cap - (size_t)n, "%s%s", i ? ", " : "",
			              problem->errors[i].field);
		snprintf(d + n, cap - (size_t)n, ".");
		ingress_problem_set_detail(problem, d);
		pl_free(d);
	}
	return PL_ERR_INVALID;
}

/* ---- routes
 * -----------------------------------------------------------------------------
 */

pl_err_t ingress_validate_create(const char *body, size_t len, json_t **event,
                                 ingress_problem_t *problem)
{
	*event = NULL;
	ingress_problem_reset(problem);
	json_t *root = parse_body(body, len, problem);
	if (!root)
		return PL_ERR_INVALID;
	json_t *out = json_object(), *v;
	const char *s;
	int64_t ms;
	double d;

	if (get_string(problem, root, "ownerId", true, 1, INGRESS_ID_MAX, &s) == PRESENT)
		json_object_set_new(out, "ownerId", json_string(s));
	add_location(problem, root, "pickupLocation", "pickup", true, out);
	add_location(problem, root, "dropOffLocation", "dropoff", true, out);
	if (get_time(problem, root, "pickupTime", true, &ms) == PRESENT)
		json_object_set_new(out, "pickupTime", json_integer(ms));
	if (get_string(problem, root, "deadline", false, 0, INGRESS_DEADLINE_MAX, &s) == PRESENT)
		json_object_set_new(out, "deadline", json_string(s));
	else
		json_object_set_new(out, "deadline", json_null());
	got_t got = get_value(problem, root, "expedited", false, &v);
	if (got == PRESENT && !json_is_boolean(v))
		ingress_problem_add(problem, "expedited",
		                    "must be a boolean, true or false (got %s)", type_name(v));
	json_object_set_new(out, "expedited", json_boolean(got == PRESENT && json_is_true(v)));
	if (get_enum(problem, root, "confirmationRequired", true, confirmation_types,
	             COUNT(confirmation_types), &s) == PRESENT)
		json_object_set_new(out, "confirmationRequired", json_string(s));

	json_t *package;
	if (get_object(problem, root, "packageInfo", true, &package) == PRESENT) {
		json_t *info = json_object();
		if (get_string(problem, package, "packageInfo.packageId", true, 1, INGRESS_ID_MAX,
		               &s) == PRESENT)
			json_object_set_new(info, "packageId", json_string(s));
		if (get_enum(problem, package, "packageInfo.size", true, package_sizes,
		             COUNT(package_sizes), &s) == PRESENT)
			json_object_set_new(info, "size", json_string(s));
		if (get_number(problem, package, "packageInfo.weight", true, 0.0,
		               INGRESS_WEIGHT_MAX, &d) == PRESENT)
			json_object_set_new(info, "weight", json_real(d));
		if (get_string(problem, package, "packageInfo.tag", false, 0, INGRESS_ID_MAX, &s) ==
		    PRESENT)
			json_object_set_new(info, "tag", json_string(s));
		else
			json_object_set_new(info, "tag", json_null());
		json_object_set_new(out, "packageInfo", info);
	}
	json_decref(root);
	return finish(problem, out, event);
}

pl_err_t ingress_validate_reschedule(const char *body, size_t len, json_t **event,
                                     ingress_problem_t *problem)
{
	*event = NULL;
	ingress_problem_reset(problem);
	json_t *root = parse_body(body, len, problem);
	if (!root)
		return PL_ERR_INVALID;
	json_t *out = json_object();
	const char *s;
	int64_t ms;
	int given = 0;
	got_t got;

	if ((got = add_location(problem, root, "pickupLocation", "pickup", false, out)) == ABSENT) {
		json_object_set_new(out, "pickupLocation", json_null());
		json_object_set_new(out, "pickup", json_null());
	}
	given += got != ABSENT;
	if ((got = add_location(problem, root, "dropOffLocation", "dropoff", false, out)) ==
	    ABSENT) {
		json_object_set_new(out, "dropOffLocation", json_null());
		json_object_set_new(out, "dropoff", json_null());
	}
	given += got != ABSENT;
	got = get_time(problem, root, "pickupTime", false, &ms);
	json_object_set_new(out, "pickupTime", got == PRESENT ? json_integer(ms) : json_null());
	given += got != ABSENT;
	got = get_string(problem, root, "deadline", false, 0, INGRESS_DEADLINE_MAX, &s);
	json_object_set_new(out, "deadline", got == PRESENT ? json_string(s) : json_null());
	given += got != ABSENT;

	if (given == 0)
		body_error(problem,
		           "must contain at least one of pickupLocation, dropOffLocation, "
		           "deadline, "
		           "pickupTime",
		           "Nothing to reschedule: send at least one of pickupLocation, "
		           "dropOffLocation, deadline, pickupTime (non-null).");
	json_decref(root);
	return finish(problem, out, event);
}

/* The point event[name] as lat/lon; false when it is null or absent. */
static bool event_point(const json_t *event, const char *name, double *lat, double *lon)
{
	const json_t *p = json_object_get(event, name);
	if (!json_is_object(p))
		return false;
	*lat = json_number_value(json_object_get(p, "latitude"));
	*lon = json_number_value(json_object_get(p, "longitude"));
	return true;
}

pl_err_t ingress_validate_area(const pl_area_t *area, const json_t *event,
                               ingress_problem_t *problem)
{
	ingress_problem_reset(problem);
	double plat, plon, dlat, dlon, d;
	char why[256];
	bool pickup = event_point(event, "pickup", &plat, &plon);
	bool dropoff = event_point(event, "dropoff", &dlat, &dlon);
	bool inside = pickup && dropoff;
	if (pickup && !pl_area_contains(area, plat, plon, &d)) {
		pl_area_outside_reason(area, d, why, sizeof(why));
		ingress_problem_add(problem, "pickupLocation", "%s", why);
		inside = false;
	}
	if (dropoff && !pl_area_contains(area, dlat, dlon, &d)) {
		pl_area_outside_reason(area, d, why, sizeof(why));
		ingress_problem_add(problem, "dropOffLocation", "%s", why);
		inside = false;
	}
	if (inside && !pl_area_route_fits(area, plat, plon, dlat, dlon, &d)) {
		pl_area_range_reason(area, d, why, sizeof(why));
		ingress_problem_add(problem, "route", "%s", why);
	}
	if (problem->error_count == 0)
		return PL_OK;
	json_t *none = json_object();
	json_t *dropped = NULL;
	finish(problem, none, &dropped);
	return PL_ERR_INVALID;
}

pl_err_t ingress_validate_confirmation(const char *body, size_t len, json_t **event,
                                       ingress_problem_t *problem)
{
	*event = NULL;
	ingress_problem_reset(problem);
	json_t *root = parse_body(body, len, problem);
	if (!root)
		return PL_ERR_INVALID;
	json_t *out = json_object(), *coords;
	const char *s;
	int64_t ms;

	if (get_time(problem, root, "dateTime", true, &ms) == PRESENT)
		json_object_set_new(out, "dateTime", json_integer(ms));
	if (get_object(problem, root, "geoCoordinates", true, &coords) == PRESENT) {
		double lat = 0, lon = 0, alt = 0;
		got_t got_lat =
		    get_number(problem, coords, "geoCoordinates.latitude", true, -90.0, 90.0, &lat);
		got_t got_lon = get_number(problem, coords, "geoCoordinates.longitude", true,
		                           -180.0, 180.0, &lon);
		get_number(problem, coords, "geoCoordinates.altitude", false, -HUGE_VAL, HUGE_VAL,
		           &alt);
		if (got_lat == PRESENT && got_lon == PRESENT)
			json_object_set_new(out, "geoCoordinates", geo_point(lat, lon, alt));
	}
	if (get_enum(problem, root, "confirmationType", true, confirmation_types,
	             COUNT(confirmation_types), &s) == PRESENT)
		json_object_set_new(out, "confirmationType", json_string(s));

	json_t *blob;
	if (get_value(problem, root, "confirmationBlob", false, &blob) == PRESENT) {
		if (!json_is_string(blob))
			ingress_problem_add(problem, "confirmationBlob",
			                    "must be a string (got %s)", type_name(blob));
		else if (json_string_length(blob) > INGRESS_BLOB_MAX_BYTES)
			ingress_problem_add(problem, "confirmationBlob",
			                    "must be at most %d bytes (got %zu)",
			                    INGRESS_BLOB_MAX_BYTES, json_string_length(blob));
		else
			json_object_set_new(out, "confirmationBlob", json_copy(blob));
	} else {
		json_object_set_new(out, "confirmationBlob", json_null());
	}
	json_decref(root);
	return finish(problem, out, event);
}
