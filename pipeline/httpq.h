/* httpq.h — query-string checks shared by the read APIs (package, scheduler, delivery): a
 * missing or malformed parameter is a 400 whose problem names the field.
 * Thread rules: stateless; call from the HTTP handler that owns req. */
#ifndef PL_HTTPQ_H
#define PL_HTTPQ_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* Reads ?year=&month= (year 1..9999, month 1..12, plain decimal integers). On a missing or bad
 * value answers 400 problem+json listing every bad field and returns false. */
bool pl_httpq_year_month(pl_http_req_t *req, int *year, int *month);

/* Parses a whole decimal integer in [min, max]; false when text is NULL, empty, has other
 * characters or is out of range. */
bool pl_httpq_int(const char *text, int64_t min, int64_t max, int64_t *out);

#endif
