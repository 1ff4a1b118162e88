/* http_route.c — what the HTTP layer decides without a connection: route matching, reason
 * phrases and the problem+json answers (pl_http_problem_text, pl_http_miss_text). Pure functions
 * over text.c and jsonw.c, so the fuzz target drives them with raw bytes without a server.
 * Owns nothing. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "jsonw.h"
#include "mem.h"
#include "text.h"

static const struct {
	unsigned code;
	const char *text;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *pl_http_reason(unsigned status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == status)
			return reasons[i].text;
	return "Unknown";
}

/* ---- routing ---------------------------------------------------------------------------- */

bool pl_http_route_match(const char *pattern, const char *path, char **names, char **values,
                         size_t max, size_t *count)
{
	size_t np = 0;
	const char *p = pattern, *u = path;
	while (*p && *u) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *ue = strchr(u, '/');
			if (!pe || np == max)
				goto fail;
			if (!ue)
				ue = u + strlen(u);
			if (ue == u)
				goto fail; /* empty segment */
			if (names) {
				names[np] = pl_strndup(p + 1, (size_t)(pe - p - 1));
				values[np] = pl_strndup(u, (size_t)(ue - u));
			}
			np++;
			p = pe + 1;
			u = ue;
			continue;
		}
		if (*p != *u)
			goto fail;
		p++;
		u++;
	}
	if (*p || *u)
		goto fail;
	if (count)
		*count = np;
	return true;
fail:
	for (size_t i = 0; names && i < np; i++) {
		pl_free(names[i]);
		pl_free(values[i]);
	}
	return false;
}

/* ---- problem answers --------------------------------------------------------------------- */

#define PUT_LIT(w, lit) pl_jsonw_raw((w), (lit), sizeof(lit) - 1)

size_t pl_http_problem_text(char **out, unsigned status, const char *detail,
                            const char *errors_json)
{
	/* The detail often quotes request text (a path, an id): made safe and bounded here, so
	 * building the answer cannot fail whatever bytes it holds. */
	char shown[PL_HTTP_DETAIL_MAX];
	const char *d = detail ? detail : pl_http_reason(status);
	size_t dlen = pl_text_clean(shown, sizeof(shown), d, strlen(d));
	pl_jsonw_t w;
	pl_jsonw_init(&w, PL_JSONW_INSERTION_ORDER);
	PUT_LIT(&w, "{\"type\":\"about:blank\",\"title\":");
	const char *title = pl_http_reason(status);
	pl_jsonw_string(&w, title, strlen(title));
	PUT_LIT(&w, ",\"status\":");
	pl_jsonw_integer(&w, status);
	PUT_LIT(&w, ",\"detail\":");
	pl_jsonw_string(&w, shown, dlen);
	PUT_LIT(&w, ",\"errors\":");
	/* errors_json is the caller's array text: written only when it is one (else []) */
	json_t *errors = errors_json ? json_loads(errors_json, 0, NULL) : NULL;
	char *etext =
	    json_is_array(errors) ? pl_json_text(errors, PL_JSONW_INSERTION_ORDER, NULL) : NULL;
	json_decref(errors);
	if (etext)
		pl_jsonw_raw(&w, etext, strlen(etext));
	else
		PUT_LIT(&w, "[]");
	pl_free(etext);
	pl_jsonw_char(&w, '}');
	size_t len;
	*out = pl_jsonw_finish(&w, &len);
	return len;
}

unsigned pl_http_miss_text(const char *method, const char *path, const char *allow, char **out,
                           size_t *len)
{
	/* method and path are the client's bytes: shown through pl_text_clean (the problem
	 * builder cleans the whole detail again, which changes nothing then) */
	char m[64], p[256], detail[512];
	pl_text_clean(m, sizeof(m), method, strlen(method));
	pl_text_clean(p, sizeof(p), path, strlen(path));
	unsigned status = allow && allow[0] ? 405 : 404;
	if (status == 405)
		snprintf(detail, sizeof(detail), "%s is not allowed on %s; allowed: %s", m, p,
		         allow);
	else
		snprintf(detail, sizeof(detail), "no route for %s", p);
	*len = pl_http_problem_text(out, status, detail, NULL);
	return status;
}
