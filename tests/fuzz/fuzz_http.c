/* fuzz_http.c — libFuzzer driver for the HTTP layer's answers built from request bytes
 * (pipeline/http_route.c): the input is split at 0x00 into a method, a path, a detail and an
 * errors text. Every route pattern of the services is matched against the path, and the
 * contract checked: a match gives non-empty parameters that put back into the pattern give the
 * path again; the miss answer (404/405) and a problem with the detail and errors are always
 * built, are JSON (jansson refuses what is not UTF-8), have type/title/status/detail/errors, and
 * their detail is safe text. Everything is freed, so LeakSanitizer catches leaks. Built by
 * scripts/fuzz.sh. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "mem.h"
#include "text.h"

static const char *const patterns[] = {
    "/api/deliveryrequests",
    "/api/deliveryrequests/{deliveryId}",
    "/api/deliveryrequests/{deliveryId}/confirmations",
    "/api/deliveries/{id}",
    "/api/deliveries/{id}/status",
    "/api/deliveries/{id}/history",
    "/api/deliveries/{id}/events",
    "/api/deliveries/{id}/owner",
    "/api/deliveries/public/{id}",
    "/api/deliveries/summary",
    "/api/packages/{id}",
    "/api/packages/summary/{ownerId}",
    "/api/dronedeliveries/{deliveryId}",
    "/api/dronedeliveries/utilization",
    "/track/{id}",
    "/{a}/{b}/{c}/{d}/{e}", /* more parameters than a request holds */
    "/healthz",
};

/* The next piece of data up to a 0x00 (or the end), as a new string. */
static char *piece(const uint8_t **data, size_t *size)
{
	const uint8_t *end = memchr(*data, 0, *size);
	size_t n = end ? (size_t)(end - *data) : *size;
	char *s = pl_strndup((const char *)*data, n);
	*data += n + (end ? 1 : 0);
	*size -= n + (end ? 1 : 0);
	return s;
}

static void check_problem(const char *text, size_t len, unsigned status)
{
	if (strlen(text) != len)
		abort();
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err);
	if (!doc)
		abort();
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	if (!json_is_string(json_object_get(doc, "type")) ||
	    !json_is_string(json_object_get(doc, "title")) ||
	    json_integer_value(json_object_get(doc, "status")) != status || !detail ||
	    !json_is_array(json_object_get(doc, "errors")) || strlen(detail) >= PL_HTTP_DETAIL_MAX)
		abort();
	for (const char *c = detail; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			abort();
	json_decref(doc);
}

/* Puts values back into the pattern: must give the path again. */
static void check_match(const char *pattern, const char *path, char **values, size_t n)
{
	char *rebuilt = pl_malloc(strlen(path) + 1);
	size_t k = 0, v = 0;
	for (const char *p = pattern; *p;) {
		if (*p == '{') {
			if (v >= n || !values[v][0] || strchr(values[v], '/'))
				abort();
			size_t l = strlen(values[v]);
			if (k + l > strlen(path))
				abort();
			memcpy(rebuilt + k, values[v++], l);
			k += l;
			p = strchr(p, '}') + 1;
			continue;
		}
		if (k >= strlen(path))
			abort();
		rebuilt[k++] = *p++;
	}
	rebuilt[k] = '\0';
	if (v != n || strcmp(rebuilt, path) != 0)
		abort();
	pl_free(rebuilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *method = piece(&data, &size);
	char *path = piece(&data, &size);
	char *detail = piece(&data, &size);
	char *errors = piece(&data, &size);
	char allow[128] = "";
	for (size_t i = 0; i < sizeof(patterns) / sizeof(*patterns); i++) {
		char *names[4], *values[4];
		size_t n = 99;
		if (!pl_http_route_match(patterns[i], path, names, values, 4, &n))
			continue;
		check_match(patterns[i], path, values, n);
		for (size_t k = 0; k < n; k++) {
			pl_free(names[k]);
			pl_free(values[k]);
		}
		if (!allow[0])
			strcpy(allow, (i % 2) ? "GET" : "GET, POST");
	}
	char *text;
	size_t len;
	unsigned status = pl_http_miss_text(method, path, allow, &text, &len);
	if (status != (allow[0] ? 405u : 404u))
		abort();
	check_problem(text, len, status);
	pl_free(text);
	unsigned st = 400 + (unsigned)(size % 200);
	len = pl_http_problem_text(&text, st, detail[0] ? detail : NULL, errors);
	check_problem(text, len, st);
	pl_free(text);
	pl_free(method);
	pl_free(path);
	pl_free(detail);
	pl_free(errors);
	return 0;
}
