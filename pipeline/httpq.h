/* httpq.h — helpers shared by the JSON read APIs (package, scheduler, delivery): query-string
 * checks (a missing or malformed parameter is a 400 whose problem names the field), JSON and
 * store-unavailable answers.
 * Thread rules: stateless; call from the HTTP handler that owns req. */
#ifndef PL_HTTPQ_H
#define PL_HTTPQ_H

#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>

#include "http.h"

/* Reads ?year=&month= (year 1..9999, month 1..12, plain decimal integers). On a missing or bad
 * value answers 400 problem+json listing every bad field and returns false. */
bool pl_httpq_year_month(pl_http_req_t *req, int *year, int *month);

/* Parses a whole decimal integer in [min, max]; false when text is NULL, empty, has other
 * characters or is out of range. */
bool pl_httpq_int(const char *text, int64_t min, int64_t max, int64_t *out);

/* Responds application/json with doc and releases doc (takes ownership). */
void pl_httpq_json(pl_http_req_t *req, unsigned status, json_t *doc);

/* 503 with Retry-After: 2 and "the <what> is unreachable: <detail>". */
void pl_httpq_unavailable(pl_http_req_t *req, const char *what, const char *detail);

#endif
