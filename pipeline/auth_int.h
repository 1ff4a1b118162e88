/* auth_int.h — between auth.c and auth_jwt.c: the JWKS and the JWT rules. Not for services. */
#ifndef PL_AUTH_INT_H
#define PL_AUTH_INT_H

#include "auth.h"

typedef struct pl_jwks pl_jwks_t;

/* What a JWT must satisfy (strings owned by pl_auth_t). */
typedef struct pl_jwt_rules {
	char *issuer, *audience;
	char *owner_claim;
	char *admin_claim, *admin_value; /* admin_claim NULL = no admin by JWT */
	int64_t clock_skew_s;
} pl_jwt_rules_t;

/* Reads a JWKS file: its RSA (RS256) and EC P-256 (ES256) keys become PEM public keys. Keys of
 * other types or for other algorithms are skipped; a file with none left is an error. */
pl_jwks_t *pl_jwks_load(const char *path, char *errstr, size_t errstr_size);
void pl_jwks_destroy(pl_jwks_t *jwks);       /* NULL is a no-op */
size_t pl_jwks_count(const pl_jwks_t *jwks); /* 0 for NULL */

/* Verifies token (alg RS256 or ES256 only, kid from the JWKS, signature, iss, aud, exp, nbf)
 * and maps its claims to a principal. */
pl_auth_result_t pl_jwt_verify(const pl_jwks_t *jwks, const pl_jwt_rules_t *rules,
                               const char *token, int64_t now_s, pl_principal_t *out, char *why,
                               size_t why_size);

/* An ownerId a principal may carry: 1..PL_AUTH_OWNER_MAX bytes, no blanks or controls. */
bool pl_auth_owner_id_ok(const char *s, size_t len);

#endif
