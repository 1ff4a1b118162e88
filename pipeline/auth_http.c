/* auth_http.c — authentication answers of the HTTP routes (see auth.h): 401 with
 * WWW-Authenticate, 403 naming the field that names another owner. Owns nothing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth.h"
#include "kafka.h" /* pl_now_ms */

bool pl_auth_http(const pl_auth_t *auth, pl_http_req_t *req, pl_principal_t *out)
{
	char why[256] = "";
	pl_auth_result_t r = pl_auth_check(auth, pl_http_header(req, "Authorization"),
	                                   pl_now_ms() / 1000, out, why, sizeof(why));
	if (r == PL_AUTH_OK)
		return true;
	pl_http_add_header(req, "WWW-Authenticate",
	                   r == PL_AUTH_MISSING
	                       ? "Bearer realm=\"dronepipe\""
	                       : "Bearer realm=\"dronepipe\", error=\"invalid_token\"");
	pl_http_problem(req, 401, why, NULL);
	return false;
}

bool pl_auth_http_owner_field(pl_http_req_t *req, const pl_principal_t *principal,
                              const char *field, const char *owner_id)
{
	if (pl_auth_may(principal, owner_id))
		return true;
	json_t *errors = json_pack("[{s:s, s:s}]", "field", field, "reason",
	                           "must be your own owner id (the one your credentials name)");
	char *text = json_dumps(errors, JSON_COMPACT);
	char detail[200];
	snprintf(detail, sizeof(detail), "%s names another owner: you may act only for yourself",
	         field);
	pl_http_problem(req, 403, detail, text);
	free(text);
	json_decref(errors);
	return false;
}
