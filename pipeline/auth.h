/* auth.h — who is calling an HTTP API: principals, API keys, bearer JWTs, tracking tokens.
 *
 * A principal is either one owner (an ownerId: it may create, read and change only that owner's
 * deliveries) or the admin role (everything). Credentials arrive as `Authorization: Bearer <x>`
 * where x is an API key from the key file (DP_AUTH_API_KEYS_FILE) or a JWT verified against a
 * JWKS file (DP_AUTH_JWKS_FILE; auth_jwt.c). With neither configured the service runs open: every
 * request is the "open" principal, which may do everything (the behaviour before authentication
 * existed); pl_auth_enabled() tells which.
 *
 * Key file: one key per line, `#` comments and blank lines skipped:
 *     sha256:<64 hex digits> owner:<ownerId>     the SHA-256 of the key (recommended: the file
 *     sha256:<64 hex digits> admin               then holds no secret)
 *     <key> owner:<ownerId>                      a plain key (hashed when loaded)
 * A presented key is hashed and its hash compared with every entry in constant time, so neither
 * which entry matched nor how much of it did shows in the time taken.
 *
 * Tracking tokens: HMAC-SHA256(DP_TRACK_TOKEN_SECRET, deliveryId) in lowercase hex; the link a
 * customer is given carries it, so the tracking page works without a login.
 *
 * Ownership: pl_auth_t owns its key table and JWKS keys. Thread rules: after pl_auth_new it is
 * read-only; every function may be called from any thread. */
#ifndef PL_AUTH_H
#define PL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "http.h"

#define PL_AUTH_OWNER_MAX 128 /* longest ownerId a principal may carry, in bytes */
#define PL_AUTH_TOKEN_HEX 64  /* tracking token: hex of a SHA-256 HMAC */

typedef enum pl_role {
	PL_ROLE_OPEN = 0, /* no authentication configured: may do everything */
	PL_ROLE_OWNER,    /* one owner */
	PL_ROLE_ADMIN,    /* every owner */
} pl_role_t;

typedef struct pl_principal {
	pl_role_t role;
	char owner_id[PL_AUTH_OWNER_MAX + 1]; /* PL_ROLE_OWNER only; "" otherwise */
} pl_principal_t;

typedef enum pl_auth_result {
	PL_AUTH_OK = 0,
	PL_AUTH_MISSING, /* no credentials in the request */
	PL_AUTH_INVALID, /* credentials given but not accepted */
} pl_auth_result_t;

typedef struct pl_auth pl_auth_t;

/* DP_AUTH_API_KEYS_FILE, DP_AUTH_JWKS_FILE, DP_AUTH_JWT_*, DP_TRACK_TOKEN_SECRET: the table every
 * service with API routes adds to its configuration. */
extern const pl_cfg_opt_t pl_auth_cfg[];

/* Builds the authenticator from cfg (which must hold pl_auth_cfg). NULL + errstr naming the
 * setting and line on a bad key file or JWKS. Logs a warning when it leaves the service open. */
pl_auth_t *pl_auth_new(const pl_cfg_t *cfg, char *errstr, size_t errstr_size);

/* Options for pl_auth_new_opts (tests, and pl_auth_new underneath). Strings are borrowed. */
typedef struct pl_auth_opts {
	const char *api_keys_file; /* NULL = no API keys */
	const char *jwks_file;     /* NULL = no JWTs */
	const char *jwt_issuer;    /* required with jwks_file */
	const char *jwt_audience;  /* required with jwks_file */
	const char *owner_claim;   /* NULL = "sub" */
	const char *admin_claim;   /* NULL = no admin by JWT */
	const char *admin_value;   /* the admin claim's value (or an element of it, if an array) */
	int64_t clock_skew_s;      /* allowed on exp and nbf */
	const char *track_secret;  /* NULL or "" = no tracking tokens */
} pl_auth_opts_t;
pl_auth_t *pl_auth_new_opts(const pl_auth_opts_t *opts, char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void pl_auth_destroy(pl_auth_t *auth);

/* True when API keys or JWTs are configured (requests then need credentials). */
bool pl_auth_enabled(const pl_auth_t *auth);

/* Authenticates the value of an Authorization header (NULL when absent). On PL_AUTH_OK *out is
 * the principal (the open principal when authentication is off); otherwise why says what was
 * wrong, without echoing the credential. now_s is the current UNIX time (for JWTs). */
pl_auth_result_t pl_auth_check(const pl_auth_t *auth, const char *authorization, int64_t now_s,
                               pl_principal_t *out, char *why, size_t why_size);

/* True when principal may act on a resource of owner_id (NULL: owner unknown, admin only). */
bool pl_auth_may(const pl_principal_t *principal, const char *owner_id);

/* "owner:<id>", "admin" or "" (open): a stable text naming the principal, e.g. for an
 * idempotency namespace. */
const char *pl_auth_principal_tag(const pl_principal_t *principal, char *buf, size_t buf_size);

/* True when tracking tokens are configured (DP_TRACK_TOKEN_SECRET). */
bool pl_auth_track_enabled(const pl_auth_t *auth);
/* out = the tracking token of delivery_id (hex, NUL-terminated); false when not configured. */
bool pl_auth_track_token(const pl_auth_t *auth, const char *delivery_id,
                         char out[PL_AUTH_TOKEN_HEX + 1]);
/* "/track/<delivery_id, percent-encoded>?token=<token>": the customer's tracking link, relative
 * to the delivery service's public address. NULL when not configured; else the caller frees it
 * with pl_free. */
char *pl_auth_track_path(const pl_auth_t *auth, const char *delivery_id);
/* True when token is delivery_id's tracking token (constant-time compare). */
bool pl_auth_track_ok(const pl_auth_t *auth, const char *delivery_id, const char *token);

/* ---- primitives, exposed for auth_jwt.c and the tests ------------------------------------- */

/* SHA-256 of data. */
void pl_auth_sha256(const void *data, size_t len, uint8_t out[32]);
/* HMAC-SHA256. */
void pl_auth_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                         uint8_t out[32]);
/* Constant-time equality of two n-byte buffers. */
bool pl_auth_equal(const void *a, const void *b, size_t n);

/* ---- HTTP (auth_http.c) ------------------------------------------------------------------- */

/* Authenticates req. On failure answers 401 (problem+json, `WWW-Authenticate: Bearer
 * realm="dronepipe"`, with error="invalid_token" when credentials were given) and returns false;
 * the handler then returns. Call from the handler that owns req. */
bool pl_auth_http(const pl_auth_t *auth, pl_http_req_t *req, pl_principal_t *out);

/* For an owner named in the request (body or query field `field`): true when principal may act
 * for owner_id; else answers 403 naming the field and returns false. */
bool pl_auth_http_owner_field(pl_http_req_t *req, const pl_principal_t *principal,
                              const char *field, const char *owner_id);

#endif
