/* auth_jwt.c — bearer JWTs: the JWKS file (RSA and EC P-256 keys turned into PEM with GnuTLS,
 * since libjwt 1.x reads no JWKS) and the verification (libjwt: signature; here: algorithm, kid,
 * iss, aud, exp, nbf and the claims that name the principal). The only module that includes
 * libjwt.
 *
 * The algorithm is decided before libjwt sees the token: only RS256 and ES256, and the key's
 * type must fit it. libjwt 1.x verifies with whatever alg the token's header names, so an
 * HS256 token "signed" with the RSA public key as HMAC secret would otherwise pass.
 * Owns: the PEM keys of the JWKS. */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"
#include "mem.h"

typedef enum key_alg { KEY_RS256, KEY_ES256 } key_alg_t;

typedef struct jwk {
	char *kid;
	key_alg_t alg;
	char *pem;
	size_t pem_len;
} jwk_t;

struct pl_jwks {
	jwk_t *keys;
	size_t nkeys;
};

/* base64url (no padding, '=' tolerated at the end) into a new buffer; NULL when not base64url. */
static uint8_t *b64url_decode(const char *s, size_t len, size_t *out_len)
{
	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return NULL;
	uint8_t *out = pl_malloc(len * 3 / 4 + 3);
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int v = c >= 'A' && c <= 'Z'   ? c - 'A'
		        : c >= 'a' && c <= 'z' ? c - 'a' + 26
		        : c >= '0' && c <= '9' ? c - '0' + 52
		        : c == '-'             ? 62
		        : c == '_'             ? 63
		                               : -1;
		if (v < 0) {
			pl_free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*out_len = n;
	return out;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* datum of the base64url member k of o (caller frees .data); false when absent or bad. */
static bool b64_member(const json_t *o, const char *k, gnutls_datum_t *d)
{
	const char *s = jstr(o, k);
	size_t n = 0;
	uint8_t *b = s ? b64url_decode(s, strlen(s), &n) : NULL;
	if (!b || n == 0 || n > 1024) {
		pl_free(b);
		return false;
	}
	d->data = b;
	d->size = (unsigned)n;
	return true;
}

/* One JWK to PEM; false + why when it is not a usable RS256/ES256 key. */
static bool jwk_to_pem(const json_t *k, jwk_t *out, char *why, size_t why_size)
{
	const char *kty = jstr(k, "kty"), *alg = jstr(k, "alg"), *use = jstr(k, "use");
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = {0}, b = {0}, pem = {0};
	bool ok = false;
	if (use && strcmp(use, "sig") != 0) {
		snprintf(why, why_size, "use is '%s', not 'sig'", use);
		goto out;
	}
	gnutls_pubkey_init(&pub);
	if (kty && strcmp(kty, "RSA") == 0) {
		if (alg && strcmp(alg, "RS256") != 0) {
			snprintf(why, why_size, "alg %s is not RS256", alg);
			goto out;
		}
		if (!b64_member(k, "n", &a) || !b64_member(k, "e", &b) ||
		    gnutls_pubkey_import_rsa_raw(pub, &a, &b) < 0) {
			snprintf(why, why_size, "RSA key without a valid n and e");
			goto out;
		}
		if (a.size < 256) {
			snprintf(why, why_size, "RSA key shorter than 2048 bits");
			goto out;
		}
		out->alg = KEY_RS256;
	} else if (kty && strcmp(kty, "EC") == 0) {
		const char *crv = jstr(k, "crv");
		if (!crv || strcmp(crv, "P-256") != 0 || (alg && strcmp(alg, "ES256") != 0)) {
			snprintf(why, why_size, "EC key not on P-256 for ES256");
			goto out;
		}
		if (!b64_member(k, "x", &a) || !b64_member(k, "y", &b) || a.size != 32 ||
		    b.size != 32 ||
		    gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_SECP256R1, &a, &b) < 0) {
			snprintf(why, why_size, "EC key without a valid 32-byte x and y");
			goto out;
		}
		out->alg = KEY_ES256;
	} else {
		snprintf(why, why_size, "kty %s is neither RSA nor EC", kty ? kty : "(none)");
		goto out;
	}
	if (gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &pem) < 0) {
		snprintf(why, why_size, "the key cannot be written as PEM");
		goto out;
	}
	out->pem = pl_strndup((const char *)pem.data, pem.size);
	out->pem_len = pem.size;
	out->kid = pl_strdup(jstr(k, "kid") ? jstr(k, "kid") : "");
	ok = true;
out:
	gnutls_free(pem.data);
	pl_free(a.data);
	pl_free(b.data);
	gnutls_pubkey_deinit(pub);
	return ok;
}

pl_jwks_t *pl_jwks_load(const char *path, char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(errstr, errstr_size, "DP_AUTH_JWKS_FILE: %s: %s (line %d)", path,
		         jerr.text, jerr.line);
		return NULL;
	}
	pl_jwks_t *jwks = pl_calloc(1, sizeof(*jwks));
	json_t *keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		snprintf(errstr, errstr_size, "DP_AUTH_JWKS_FILE: %s has no \"keys\" array", path);
		goto fail;
	}
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		jwk_t jwk = {0};
		char why[160];
		if (!json_is_object(k) || !jwk_to_pem(k, &jwk, why, sizeof(why))) {
			/* a JWKS often holds keys for other uses: skip them, but say which */
			continue;
		}
		if (!jwk.kid[0]) {
			snprintf(errstr, errstr_size, "DP_AUTH_JWKS_FILE: %s key %zu has no kid",
			         path, i);
			pl_free(jwk.kid);
			pl_free(jwk.pem);
			goto fail;
		}
		jwks->keys = pl_realloc(jwks->keys, (jwks->nkeys + 1) * sizeof(*jwks->keys));
		jwks->keys[jwks->nkeys++] = jwk;
	}
	if (jwks->nkeys == 0) {
		snprintf(errstr, errstr_size,
		         "DP_AUTH_JWKS_FILE: %s holds no RS256 (RSA >= 2048 bits) or ES256 (EC "
		         "P-256) signing key",
		         path);
		goto fail;
	}
	json_decref(doc);
	return jwks;
fail:
	json_decref(doc);
	pl_jwks_destroy(jwks);
	return NULL;
}

void pl_jwks_destroy(pl_jwks_t *jwks)
{
	if (!jwks)
		return;
	for (size_t i = 0; i < jwks->nkeys; i++) {
		pl_free(jwks->keys[i].kid);
		pl_free(jwks->keys[i].pem);
	}
	pl_free(jwks->keys);
	pl_free(jwks);
}

size_t pl_jwks_count(const pl_jwks_t *jwks)
{
	return jwks ? jwks->nkeys : 0;
}

/* The JSON of the token's first segment (its header); NULL when not base64url JSON. */
static json_t *token_header(const char *token)
{
	const char *dot = strchr(token, '.');
	size_t n = 0;
	uint8_t *raw = dot ? b64url_decode(token, (size_t)(dot - token), &n) : NULL;
	json_t *h = raw ? json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
	pl_free(raw);
	if (h && !json_is_object(h)) {
		json_decref(h);
		h = NULL;
	}
	return h;
}

static bool number_claim(const json_t *claims, const char *name, double *out)
{
	json_t *v = json_object_get(claims, name);
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

/* s is value, or (value an array) one of its strings */
static bool claim_has(const json_t *v, const char *want)
{
	if (json_is_string(v))
		return strcmp(json_string_value(v), want) == 0;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) if (json_is_string(e) &&
	                                strcmp(json_string_value(e), want) == 0) return true;
	return false;
}

#define INVALID(...)                                                                               \
	do {                                                                                       \
		snprintf(why, why_size, __VA_ARGS__);                                              \
		goto out;                                                                          \
	} while (0)

pl_auth_result_t pl_jwt_verify(const pl_jwks_t *jwks, const pl_jwt_rules_t *rules,
                               const char *token, int64_t now_s, pl_principal_t *out, char *why,
                               size_t why_size)
{
	pl_auth_result_t result = PL_AUTH_INVALID;
	jwt_t *jwt = NULL;
	char *grants = NULL;
	json_t *claims = NULL;
	json_t *header = token_header(token);
	if (!header)
		INVALID("the JWT header is not base64url JSON");
	const char *alg = jstr(header, "alg"), *kid = jstr(header, "kid");
	key_alg_t want;
	if (alg && strcmp(alg, "RS256") == 0)
		want = KEY_RS256;
	else if (alg && strcmp(alg, "ES256") == 0)
		want = KEY_ES256;
	else
		INVALID("the JWT algorithm must be RS256 or ES256");
	if (!kid)
		INVALID("the JWT header has no kid");
	const jwk_t *key = NULL;
	for (size_t i = 0; i < jwks->nkeys && !key; i++)
		if (jwks->keys[i].alg == want && strcmp(jwks->keys[i].kid, kid) == 0)
			key = &jwks->keys[i];
	if (!key)
		INVALID("the JWT's kid names no %s key of the JWKS", alg);
	if (jwt_decode(&jwt, token, (const unsigned char *)key->pem, (int)key->pem_len) != 0 ||
	    !jwt)
		INVALID("the JWT signature does not verify");
	jwt_alg_t got = jwt_get_alg(jwt);
	if (got != (want == KEY_RS256 ? JWT_ALG_RS256 : JWT_ALG_ES256))
		INVALID("the JWT signature does not verify");
	grants = jwt_get_grants_json(jwt, NULL);
	claims = grants ? json_loads(grants, 0, NULL) : NULL;
	if (!json_is_object(claims))
		INVALID("the JWT claims are not a JSON object");
	const char *iss = jstr(claims, "iss");
	if (!iss || strcmp(iss, rules->issuer) != 0)
		INVALID("the JWT issuer is not the one expected");
	if (!claim_has(json_object_get(claims, "aud"), rules->audience))
		INVALID("the JWT audience does not include this API");
	double exp, nbf;
	if (!number_claim(claims, "exp", &exp))
		INVALID("the JWT has no exp");
	if ((double)now_s >= exp + (double)rules->clock_skew_s)
		INVALID("the JWT has expired");
	if (json_object_get(claims, "nbf")) {
		if (!number_claim(claims, "nbf", &nbf))
			INVALID("the JWT nbf is not a number");
		if ((double)now_s + (double)rules->clock_skew_s < nbf)
			INVALID("the JWT is not valid yet");
	}
	memset(out, 0, sizeof(*out));
	if (rules->admin_claim &&
	    claim_has(json_object_get(claims, rules->admin_claim), rules->admin_value)) {
		out->role = PL_ROLE_ADMIN;
	} else {
		const char *owner = jstr(claims, rules->owner_claim);
		if (!owner || !pl_auth_owner_id_ok(owner, strlen(owner)))
			INVALID(
			    "the JWT claim %s does not hold an ownerId (1..%d bytes, no blanks)",
			    rules->owner_claim, PL_AUTH_OWNER_MAX);
		out->role = PL_ROLE_OWNER;
		memcpy(out->owner_id, owner, strlen(owner) + 1);
	}
	result = PL_AUTH_OK;
out:
	json_decref(claims);
	free(grants);
	jwt_free(jwt);
	json_decref(header);
	return result;
}
