/* httpq.c — helpers for the JSON read APIs (see httpq.h). Owns nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpq.h"
#include "log.h"

bool pl_httpq_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
	if (!text || !*text)
		return false;
	for (const char *c = text; *c; c++)
		if ((*c < '0' || *c > '9') && !(c == text && *c == '-'))
			return false;
	errno = 0;
	char *end;
	long long v = strtoll(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool pl_httpq_year_month(pl_http_req_t *req, int *year, int *month)
{
	int64_t y = 0, m = 0;
	bool yok = pl_httpq_int(pl_http_query(req, "year"), 1, 9999, &y);
	bool mok = pl_httpq_int(pl_http_query(req, "month"), 1, 12, &m);
	if (yok && mok) {
		*year = (int)y;
		*month = (int)m;
		return true;
	}
	char errors[256];
	snprintf(errors, sizeof(errors), "[%s%s%s]",
	         yok ? "" : "{\"field\":\"year\",\"reason\":\"must be an integer from 1 to 9999\"}",
	         !yok && !mok ? "," : "",
	         mok ? "" : "{\"field\":\"month\",\"reason\":\"must be an integer from 1 to 12\"}");
	pl_http_problem(req, 400, "year and month must be given as integers", errors);
	return false;
}

void pl_httpq_json(pl_http_req_t *req, unsigned status, json_t *doc)
{
	/* A builder that was given text jansson refuses (not UTF-8) returns NULL: the client
	 * gets a plain 500 and the service goes on. */
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
	json_decref(doc);
	if (!text) {
		pl_log(PL_LOG_ERROR, "answer_not_built",
		       PL_LOG_FIELDS(PL_LS("path", pl_http_path(req))),
		       "the JSON answer could not be built");
		pl_http_problem(req, 500, "the answer could not be built", NULL);
		return;
	}
	pl_http_respond(req, status, "application/json", text, strlen(text));
	free(text);
}

void pl_httpq_unavailable(pl_http_req_t *req, const char *what, const char *detail)
{
	char text[400];
	snprintf(text, sizeof(text), "the %s is unreachable: %s", what, detail);
	pl_http_add_header(req, "Retry-After", "2");
	pl_http_problem(req, 503, text, NULL);
}
