/* auth.c — principals, the API-key table and tracking tokens (see auth.h); JWTs are in
 * auth_jwt.c. The only module besides http.c that includes GnuTLS, for its hashes.
 * Owns: the key table (hashes and principals), the tracking secret, the JWKS (through
 * auth_int.h). */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "auth_int.h"
#include "log.h"
#include "mem.h"

const pl_cfg_opt_t pl_auth_cfg[] = {
    {"DP_AUTH_API_KEYS_FILE", PL_CFG_STR, NULL, 0, 4096,
     .help = "file of API keys, one per line: 'sha256:<hex of the key's SHA-256> owner:<ownerId>' "
             "or '... admin' (a plain key instead of sha256:<hex> is accepted); API routes then "
             "need 'Authorization: Bearer <key>'"},
    {"DP_AUTH_JWKS_FILE", PL_CFG_STR, NULL, 0, 4096,
     .help = "JWKS file (RS256/ES256 public keys) that bearer JWTs are verified against; needs "
             "DP_AUTH_JWT_ISSUER and DP_AUTH_JWT_AUDIENCE"},
    {"DP_AUTH_JWT_ISSUER", PL_CFG_STR, NULL, 0, 1024, .help = "required 'iss' of a JWT"},
    {"DP_AUTH_JWT_AUDIENCE", PL_CFG_STR, NULL, 0, 1024,
     .help = "required 'aud' of a JWT (a string, or one element of an array)"},
    {"DP_AUTH_JWT_OWNER_CLAIM", PL_CFG_STR, "sub", 1, 128,
     .help = "JWT claim holding the caller's ownerId"},
    {"DP_AUTH_JWT_ADMIN_CLAIM", PL_CFG_STR, NULL, 0, 128,
     .help = "JWT claim that makes the caller admin when it is (or, as an array, contains) "
             "DP_AUTH_JWT_ADMIN_VALUE; unset = no admin by JWT"},
    {"DP_AUTH_JWT_ADMIN_VALUE", PL_CFG_STR, "dronepipe-admin", 1, 256,
     .help = "value of DP_AUTH_JWT_ADMIN_CLAIM that means admin"},
    {"DP_AUTH_CLOCK_SKEW_S", PL_CFG_INT, "60", 0, 600,
     .help = "seconds of clock difference allowed on a JWT's exp and nbf"},
    {"DP_TRACK_TOKEN_SECRET", PL_CFG_STR, NULL, 0, 4096, false, true, NULL,
     "secret of the tracking-link tokens (HMAC-SHA256 of the deliveryId); the same value on "
     "ingress and delivery service; at least 16 bytes; usually DP_TRACK_TOKEN_SECRET_FILE"},
    {NULL},
};

typedef struct key_entry {
	uint8_t hash[32];
	pl_principal_t principal;
} key_entry_t;

struct pl_auth {
	key_entry_t *keys;
	size_t nkeys;
	pl_jwks_t *jwks;
	pl_jwt_rules_t rules;
	uint8_t *track_secret;
	size_t track_secret_len;
};

void pl_auth_sha256(const void *data, size_t len, uint8_t out[32])
{
	gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out);
}

void pl_auth_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                         uint8_t out[32])
{
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, len, out);
}

bool pl_auth_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(x[i] ^ y[i]);
	return diff == 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

bool pl_auth_owner_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > PL_AUTH_OWNER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 ||
		    c == 0x7f) /* no controls, no blanks: the key file splits on them */
			return false;
	}
	return true;
}

/* Parses "owner:<id>" or "admin" into p; false with why. */
static bool parse_principal(const char *text, pl_principal_t *p, char *why, size_t why_size)
{
	memset(p, 0, sizeof(*p));
	if (strcmp(text, "admin") == 0) {
		p->role = PL_ROLE_ADMIN;
		return true;
	}
	if (strncmp(text, "owner:", 6) == 0 && pl_auth_owner_id_ok(text + 6, strlen(text + 6))) {
		p->role = PL_ROLE_OWNER;
		memcpy(p->owner_id, text + 6, strlen(text + 6) + 1);
		return true;
	}
	snprintf(why, why_size,
	         "the principal must be 'admin' or 'owner:<ownerId>' (ownerId 1..%d bytes, no "
	         "blanks or control characters)",
	         PL_AUTH_OWNER_MAX);
	return false;
}

/* One line of the key file (trimmed, not empty, not a comment) into e. */
static bool parse_key_line(char *line, key_entry_t *e, char *why, size_t why_size)
{
	char *key = strtok(line, " \t");
	char *who = strtok(NULL, " \t");
	char *extra = strtok(NULL, " \t");
	if (!who) {
		snprintf(why, why_size,
		         "no principal after the key: add ' owner:<ownerId>' or ' admin'");
		return false;
	}
	if (extra) {
		snprintf(why, why_size, "more than a key and a principal on the line");
		return false;
	}
	if (!parse_principal(who, &e->principal, why, why_size))
		return false;
	if (strncmp(key, "sha256:", 7) == 0) {
		const char *hex = key + 7;
		if (strlen(hex) != 64) {
			snprintf(why, why_size, "sha256: must be followed by 64 hex digits");
			return false;
		}
		for (int i = 0; i < 32; i++) {
			int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				snprintf(why, why_size,
				         "sha256: must be followed by 64 hex digits");
				return false;
			}
			e->hash[i] = (uint8_t)(hi << 4 | lo);
		}
		return true;
	}
	if (strlen(key) < 16) {
		snprintf(why, why_size, "a plain key must be at least 16 characters");
		return false;
	}
	pl_auth_sha256(key, strlen(key), e->hash);
	return true;
}

static bool load_keys(pl_auth_t *auth, const char *path, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(errstr, errstr_size, "DP_AUTH_API_KEYS_FILE: cannot read %s: %s", path,
		         strerror(errno));
		return false;
	}
	bool ok = true;
	char line[2048];
	for (unsigned lineno = 1; fgets(line, sizeof(line), f); lineno++) {
		size_t n = strcspn(line, "\r\n");
		if (line[n] == '\0' && !feof(f)) {
			snprintf(errstr, errstr_size,
			         "DP_AUTH_API_KEYS_FILE: %s line %u is too long", path, lineno);
			ok = false;
			break;
		}
		line[n] = '\0';
		char *s = line + strspn(line, " \t");
		if (!*s || *s == '#')
			continue;
		key_entry_t e;
		char why[200];
		if (!parse_key_line(s, &e, why, sizeof(why))) {
			snprintf(errstr, errstr_size, "DP_AUTH_API_KEYS_FILE: %s line %u: %s", path,
			         lineno, why);
			ok = false;
			break;
		}
		auth->keys = pl_realloc(auth->keys, (auth->nkeys + 1) * sizeof(*auth->keys));
		auth->keys[auth->nkeys++] = e;
	}
	fclose(f);
	if (ok && auth->nkeys == 0) {
		snprintf(errstr, errstr_size, "DP_AUTH_API_KEYS_FILE: %s holds no key", path);
		ok = false;
	}
	return ok;
}

pl_auth_t *pl_auth_new_opts(const pl_auth_opts_t *opts, char *errstr, size_t errstr_size)
{
	pl_auth_t *auth = pl_calloc(1, sizeof(*auth));
	if (opts->api_keys_file && *opts->api_keys_file &&
	    !load_keys(auth, opts->api_keys_file, errstr, errstr_size))
		goto fail;
	if (opts->jwks_file && *opts->jwks_file) {
		if (!opts->jwt_issuer || !*opts->jwt_issuer || !opts->jwt_audience ||
		    !*opts->jwt_audience) {
			snprintf(
			    errstr, errstr_size,
			    "DP_AUTH_JWKS_FILE needs DP_AUTH_JWT_ISSUER and DP_AUTH_JWT_AUDIENCE");
			goto fail;
		}
		auth->jwks = pl_jwks_load(opts->jwks_file, errstr, errstr_size);
		if (!auth->jwks)
			goto fail;
		auth->rules.issuer = pl_strdup(opts->jwt_issuer);
		auth->rules.audience = pl_strdup(opts->jwt_audience);
		auth->rules.owner_claim = pl_strdup(opts->owner_claim ? opts->owner_claim : "sub");
		if (opts->admin_claim && *opts->admin_claim) {
			auth->rules.admin_claim = pl_strdup(opts->admin_claim);
			auth->rules.admin_value =
			    pl_strdup(opts->admin_value ? opts->admin_value : "dronepipe-admin");
		}
		auth->rules.clock_skew_s = opts->clock_skew_s;
	}
	if (opts->track_secret && *opts->track_secret) {
		size_t n = strlen(opts->track_secret);
		if (n < 16) {
			snprintf(errstr, errstr_size,
			         "DP_TRACK_TOKEN_SECRET must be at least 16 bytes (got %zu)", n);
			goto fail;
		}
		auth->track_secret = (uint8_t *)pl_strdup(opts->track_secret);
		auth->track_secret_len = n;
	}
	return auth;
fail:
	pl_auth_destroy(auth);
	return NULL;
}

pl_auth_t *pl_auth_new(const pl_cfg_t *cfg, char *errstr, size_t errstr_size)
{
	pl_auth_opts_t opts = {
	    .api_keys_file = pl_cfg_str(cfg, "DP_AUTH_API_KEYS_FILE"),
	    .jwks_file = pl_cfg_str(cfg, "DP_AUTH_JWKS_FILE"),
	    .jwt_issuer = pl_cfg_str(cfg, "DP_AUTH_JWT_ISSUER"),
	    .jwt_audience = pl_cfg_str(cfg, "DP_AUTH_JWT_AUDIENCE"),
	    .owner_claim = pl_cfg_str(cfg, "DP_AUTH_JWT_OWNER_CLAIM"),
	    .admin_claim = pl_cfg_str(cfg, "DP_AUTH_JWT_ADMIN_CLAIM"),
	    .admin_value = pl_cfg_str(cfg, "DP_AUTH_JWT_ADMIN_VALUE"),
	    .clock_skew_s = pl_cfg_int(cfg, "DP_AUTH_CLOCK_SKEW_S"),
	    .track_secret = pl_cfg_str(cfg, "DP_TRACK_TOKEN_SECRET"),
	};
	pl_auth_t *auth = pl_auth_new_opts(&opts, errstr, errstr_size);
	if (auth && !pl_auth_enabled(auth))
		pl_log(PL_LOG_WARN, "auth_disabled", NULL,
		       "no DP_AUTH_API_KEYS_FILE and no DP_AUTH_JWKS_FILE: the API is open to "
		       "anyone who can reach it (every caller may read and change every delivery)");
	else if (auth)
		pl_log(PL_LOG_INFO, "auth_enabled",
		       PL_LOG_FIELDS(PL_LI("api_keys", (int64_t)auth->nkeys),
		                     PL_LI("jwks_keys", (int64_t)pl_jwks_count(auth->jwks))),
		       "API routes need credentials");
	return auth;
}

void pl_auth_destroy(pl_auth_t *auth)
{
	if (!auth)
		return;
	pl_free(auth->keys);
	pl_jwks_destroy(auth->jwks);
	pl_free(auth->rules.issuer);
	pl_free(auth->rules.audience);
	pl_free(auth->rules.owner_claim);
	pl_free(auth->rules.admin_claim);
	pl_free(auth->rules.admin_value);
	if (auth->track_secret) {
		memset(auth->track_secret, 0, auth->track_secret_len);
		pl_free(auth->track_secret);
	}
	pl_free(auth);
}

bool pl_auth_enabled(const pl_auth_t *auth)
{
	return auth && (auth->nkeys > 0 || auth->jwks);
}

/* Three base64url segments separated by dots, the first two not empty (an empty signature is
 * still a JWT, one that is refused as such: alg none). */
static bool looks_like_jwt(const char *s)
{
	int dots = 0;
	size_t seg = 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (seg == 0 || dots == 2)
				return false;
			dots++;
			seg = 0;
		} else if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		           (*s >= '0' && *s <= '9') || *s == '-' || *s == '_') {
			seg++;
		} else {
			return false;
		}
	}
	return dots == 2;
}

pl_auth_result_t pl_auth_check(const pl_auth_t *auth, const char *authorization, int64_t now_s,
                               pl_principal_t *out, char *why, size_t why_size)
{
	memset(out, 0, sizeof(*out));
	if (!pl_auth_enabled(auth))
		return PL_AUTH_OK; /* open */
	if (!authorization || !*authorization) {
		snprintf(why, why_size,
		         "credentials are required: send 'Authorization: Bearer "
		         "<API key or JWT>'");
		return PL_AUTH_MISSING;
	}
	if (strncasecmp(authorization, "Bearer ", 7) != 0) {
		snprintf(why, why_size, "the Authorization scheme must be Bearer");
		return PL_AUTH_INVALID;
	}
	const char *cred = authorization + 7;
	while (*cred == ' ')
		cred++;
	size_t len = strlen(cred);
	if (len == 0 || len > 16384) {
		snprintf(why, why_size, "the bearer credential is empty or too long");
		return PL_AUTH_INVALID;
	}
	if (auth->jwks && looks_like_jwt(cred))
		return pl_jwt_verify(auth->jwks, &auth->rules, cred, now_s, out, why, why_size);
	uint8_t h[32];
	pl_auth_sha256(cred, len, h);
	/* every entry is compared, so the time does not tell which one matched */
	const key_entry_t *match = NULL;
	for (size_t i = 0; i < auth->nkeys; i++) {
		bool eq = pl_auth_equal(h, auth->keys[i].hash, 32);
		match = eq ? &auth->keys[i] : match;
	}
	if (!match) {
		snprintf(why, why_size, "the credential is not a valid API key%s",
		         auth->jwks ? " or JWT" : "");
		return PL_AUTH_INVALID;
	}
	*out = match->principal;
	return PL_AUTH_OK;
}

bool pl_auth_may(const pl_principal_t *principal, const char *owner_id)
{
	if (principal->role == PL_ROLE_OPEN || principal->role == PL_ROLE_ADMIN)
		return true;
	return owner_id && strcmp(principal->owner_id, owner_id) == 0;
}

const char *pl_auth_principal_tag(const pl_principal_t *principal, char *buf, size_t buf_size)
{
	switch (principal->role) {
	case PL_ROLE_OWNER:
		snprintf(buf, buf_size, "owner:%s", principal->owner_id);
		break;
	case PL_ROLE_ADMIN:
		snprintf(buf, buf_size, "admin");
		break;
	default:
		snprintf(buf, buf_size, "%s", "");
	}
	return buf;
}

bool pl_auth_track_enabled(const pl_auth_t *auth)
{
	return auth && auth->track_secret;
}

bool pl_auth_track_token(const pl_auth_t *auth, const char *delivery_id,
                         char out[PL_AUTH_TOKEN_HEX + 1])
{
	out[0] = '\0';
	if (!pl_auth_track_enabled(auth))
		return false;
	uint8_t mac[32];
	pl_auth_hmac_sha256(auth->track_secret, auth->track_secret_len, delivery_id,
	                    strlen(delivery_id), mac);
	to_hex(mac, 32, out);
	return true;
}

char *pl_auth_track_path(const pl_auth_t *auth, const char *delivery_id)
{
	char token[PL_AUTH_TOKEN_HEX + 1];
	if (!pl_auth_track_token(auth, delivery_id, token))
		return NULL;
	size_t n = strlen(delivery_id);
	char *out = pl_malloc(sizeof("/track/?token=") + 3 * n + PL_AUTH_TOKEN_HEX);
	char *o = out + sprintf(out, "/track/");
	for (const unsigned char *c = (const unsigned char *)delivery_id; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~')
			*o++ = (char)*c;
		else
			o += sprintf(o, "%%%02X", *c);
	}
	sprintf(o, "?token=%s", token);
	return out;
}

bool pl_auth_track_ok(const pl_auth_t *auth, const char *delivery_id, const char *token)
{
	char want[PL_AUTH_TOKEN_HEX + 1];
	if (!token || !pl_auth_track_token(auth, delivery_id, want))
		return false;
	/* length first (public: always 64), then the bytes in constant time */
	if (strlen(token) != PL_AUTH_TOKEN_HEX)
		return false;
	char got[PL_AUTH_TOKEN_HEX];
	for (int i = 0; i < PL_AUTH_TOKEN_HEX; i++) /* accept upper-case hex too */
		got[i] = (token[i] >= 'A' && token[i] <= 'F') ? (char)(token[i] + 32) : token[i];
	return pl_auth_equal(got, want, PL_AUTH_TOKEN_HEX);
}
