/* test_auth.c — pipeline/auth.c and auth_jwt.c: the API-key file (hashed and plain keys, every
 * kind of bad line), principals and what they may do, tracking tokens (HMAC-SHA256 against
 * RFC 4231), and bearer JWTs signed here with keys generated here (GnuTLS): good RS256 and
 * ES256 tokens, and by class every way a token must fail (time, issuer, audience, signature,
 * algorithm, kid, claims, garbage). */
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

#define NOW 1800000000LL

static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/dp-test-auth-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static pl_auth_result_t check(const pl_auth_t *auth, const char *authz, pl_principal_t *p)
{
	char why[256];
	return pl_auth_check(auth, authz, NOW, p, why, sizeof(why));
}

/* ---- API keys ---------------------------------------------------------------------------- */

static pl_auth_t *keys_auth(const char *file_text, char *err, size_t err_size)
{
	char *path = write_temp(file_text);
	pl_auth_opts_t o = {.api_keys_file = path};
	pl_auth_t *a = pl_auth_new_opts(&o, err, err_size);
	unlink(path);
	free(path);
	return a;
}

static void test_keys(void **state)
{
	(void)state;
	const char *alice_key = "alice-key-0123456789abcdef";
	uint8_t h[32];
	pl_auth_sha256(alice_key, strlen(alice_key), h);
	char hx[65];
	hex(h, 32, hx);
	char file[512];
	snprintf(file, sizeof(file),
	         "# keys\n\n  sha256:%s owner:alice\r\nplain-admin-key-0123456789 admin\n"
	         "bob-plain-key-0123456789\towner:bob\n",
	         hx);
	char err[256] = "";
	pl_auth_t *a = keys_auth(file, err, sizeof(err));
	assert_non_null(a);
	assert_true(pl_auth_enabled(a));
	pl_principal_t p;
	char bearer[128];
	snprintf(bearer, sizeof(bearer), "Bearer %s", alice_key);
	assert_int_equal(check(a, bearer, &p), PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_OWNER);
	assert_string_equal(p.owner_id, "alice");
	assert_int_equal(check(a, "bearer plain-admin-key-0123456789", &p), PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_ADMIN);
	assert_int_equal(check(a, "Bearer bob-plain-key-0123456789", &p), PL_AUTH_OK);
	assert_string_equal(p.owner_id, "bob");
	/* the hash itself is not a key: the file holds no secret */
	snprintf(bearer, sizeof(bearer), "Bearer sha256:%s", hx);
	assert_int_equal(check(a, bearer, &p), PL_AUTH_INVALID);
	snprintf(bearer, sizeof(bearer), "Bearer %s", hx);
	assert_int_equal(check(a, bearer, &p), PL_AUTH_INVALID);
	/* near misses, other schemes, nothing */
	assert_int_equal(check(a, "Bearer alice-key-0123456789abcdeF", &p), PL_AUTH_INVALID);
	assert_int_equal(check(a, "Bearer alice-key-0123456789abcde", &p), PL_AUTH_INVALID);
	assert_int_equal(check(a, "Bearer ", &p), PL_AUTH_INVALID);
	assert_int_equal(check(a, "Basic YWxpY2U6eA==", &p), PL_AUTH_INVALID);
	assert_int_equal(check(a, "alice-key-0123456789abcdef", &p), PL_AUTH_INVALID);
	assert_int_equal(check(a, NULL, &p), PL_AUTH_MISSING);
	assert_int_equal(check(a, "", &p), PL_AUTH_MISSING);
	/* hostile bytes: invalid UTF-8, controls, a huge value */
	assert_int_equal(check(a, "Bearer \xff\xfe\x80\x01", &p), PL_AUTH_INVALID);
	char *huge = malloc(100000);
	memset(huge, 'k', 99999);
	huge[99999] = '\0';
	memcpy(huge, "Bearer ", 7);
	assert_int_equal(check(a, huge, &p), PL_AUTH_INVALID);
	free(huge);
	pl_auth_destroy(a);
}

static void test_bad_key_files(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"just-a-key-without-principal\n", "line 1: no principal"},
	    {"# c\nsha256:abcd owner:x\n", "line 2: sha256: must be followed by 64 hex"},
	    {"sha256:zz00000000000000000000000000000000000000000000000000000000000000 admin\n",
	     "64 hex"},
	    {"short admin\n", "at least 16 characters"},
	    {"long-enough-plain-key owner: \n", "the principal must be"},
	    {"long-enough-plain-key owner:\n", "the principal must be"},
	    {"long-enough-plain-key root\n", "the principal must be"},
	    {"long-enough-plain-key owner:a\x01z\n", "the principal must be"},
	    {"long-enough-plain-key admin extra\n", "more than a key"},
	    {"# only comments\n\n", "holds no key"},
	    {"", "holds no key"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		pl_auth_t *a = keys_auth(cases[i].text, err, sizeof(err));
		if (a || !strstr(err, cases[i].want))
			fail_msg("case %zu: got %s, want error with '%s'", i, err, cases[i].want);
		assert_non_null(strstr(err, "DP_AUTH_API_KEYS_FILE"));
	}
	/* an owner id over the limit */
	char line[400];
	memset(line, 0, sizeof(line));
	strcpy(line, "long-enough-plain-key owner:");
	memset(line + strlen(line), 'o', PL_AUTH_OWNER_MAX + 1);
	strcat(line, "\n");
	char err[256];
	assert_null(keys_auth(line, err, sizeof(err)));
	pl_auth_opts_t o = {.api_keys_file = "/nonexistent/keys"};
	assert_null(pl_auth_new_opts(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read /nonexistent/keys"));
}

static void test_open_and_may(void **state)
{
	(void)state;
	char err[256];
	pl_auth_opts_t o = {0};
	pl_auth_t *a = pl_auth_new_opts(&o, err, sizeof(err));
	assert_false(pl_auth_enabled(a));
	pl_principal_t p;
	assert_int_equal(check(a, NULL, &p), PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_OPEN);
	assert_true(pl_auth_may(&p, "anyone"));
	assert_true(pl_auth_may(&p, NULL));
	char tag[160];
	assert_string_equal(pl_auth_principal_tag(&p, tag, sizeof(tag)), "");
	pl_auth_destroy(a);
	pl_auth_destroy(NULL);

	pl_principal_t owner = {.role = PL_ROLE_OWNER};
	strcpy(owner.owner_id, "alice");
	assert_true(pl_auth_may(&owner, "alice"));
	assert_false(pl_auth_may(&owner, "alice2"));
	assert_false(pl_auth_may(&owner, "alic"));
	assert_false(pl_auth_may(&owner, ""));
	assert_false(pl_auth_may(&owner, NULL));
	assert_string_equal(pl_auth_principal_tag(&owner, tag, sizeof(tag)), "owner:alice");
	pl_principal_t admin = {.role = PL_ROLE_ADMIN};
	assert_true(pl_auth_may(&admin, "alice"));
	assert_true(pl_auth_may(&admin, NULL));
	assert_string_equal(pl_auth_principal_tag(&admin, tag, sizeof(tag)), "admin");
}

/* ---- tracking tokens ---------------------------------------------------------------------- */

static void test_track_tokens(void **state)
{
	(void)state;
	/* RFC 4231 test case 2 */
	uint8_t mac[32];
	pl_auth_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	char hx[65];
	hex(mac, 32, hx);
	assert_string_equal(hx, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	char err[256];
	pl_auth_opts_t o = {.track_secret = "a secret of 24 bytes...."};
	pl_auth_t *a = pl_auth_new_opts(&o, err, sizeof(err));
	assert_true(pl_auth_track_enabled(a));
	assert_false(pl_auth_enabled(a)); /* a tracking secret alone does not close the API */
	const char *id = "3f2c1e4a-8b7d-4c2e-9f1a-0b6d5e4c3a21";
	char tok[PL_AUTH_TOKEN_HEX + 1];
	assert_true(pl_auth_track_token(a, id, tok));
	assert_int_equal(strlen(tok), 64);
	pl_auth_hmac_sha256(o.track_secret, strlen(o.track_secret), id, strlen(id), mac);
	hex(mac, 32, hx);
	assert_string_equal(tok, hx);
	assert_true(pl_auth_track_ok(a, id, tok));
	char upper[65];
	for (int i = 0; i < 65; i++)
		upper[i] = (char)((tok[i] >= 'a' && tok[i] <= 'f') ? tok[i] - 32 : tok[i]);
	assert_true(pl_auth_track_ok(a, id, upper));
	/* another delivery's token, a changed digit, truncated, extended, empty, junk */
	char other[65];
	assert_true(pl_auth_track_token(a, "3f2c1e4a-8b7d-4c2e-9f1a-0b6d5e4c3a22", other));
	assert_false(pl_auth_track_ok(a, id, other));
	char bad[70];
	strcpy(bad, tok);
	bad[10] = bad[10] == '0' ? '1' : '0';
	assert_false(pl_auth_track_ok(a, id, bad));
	strcpy(bad, tok);
	bad[63] = '\0';
	assert_false(pl_auth_track_ok(a, id, bad));
	snprintf(bad, sizeof(bad), "%s0", tok);
	assert_false(pl_auth_track_ok(a, id, bad));
	assert_false(pl_auth_track_ok(a, id, ""));
	assert_false(pl_auth_track_ok(a, id, NULL));
	assert_false(pl_auth_track_ok(a, id, "\xff\xfe"));
	pl_auth_destroy(a);

	/* a different secret makes different tokens; no secret makes none */
	pl_auth_opts_t o2 = {.track_secret = "another secret of 24 b."};
	a = pl_auth_new_opts(&o2, err, sizeof(err));
	assert_false(pl_auth_track_ok(a, id, tok));
	pl_auth_destroy(a);
	pl_auth_opts_t none = {0};
	a = pl_auth_new_opts(&none, err, sizeof(err));
	assert_false(pl_auth_track_enabled(a));
	assert_false(pl_auth_track_token(a, id, tok));
	assert_false(pl_auth_track_ok(a, id, tok));
	pl_auth_destroy(a);
	pl_auth_opts_t weak = {.track_secret = "short"};
	assert_null(pl_auth_new_opts(&weak, err, sizeof(err)));
	assert_non_null(strstr(err, "DP_TRACK_TOKEN_SECRET"));
}

/* ---- JWTs ----------------------------------------------------------------------------------- */

typedef struct signer {
	gnutls_privkey_t priv;
	gnutls_pubkey_t pub;
	bool ec;
	const char *kid;
} signer_t;

static signer_t rsa_signer, ec_signer, stranger; /* stranger: same kid as rsa, not in JWKS */
static char *jwks_path;
static char *rsa_pem; /* the RSA public key as PEM (for the HS256 confusion attack) */

static char *b64url(const uint8_t *in, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4), *o = out;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = tbl[v >> 6 & 63];
		*o++ = tbl[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = tbl[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

static char *b64url_str(const char *s)
{
	return b64url((const uint8_t *)s, strlen(s));
}

/* big-endian integer datum into exactly n bytes */
static void fixed(const gnutls_datum_t *d, uint8_t *out, size_t n)
{
	memset(out, 0, n);
	size_t len = d->size;
	const uint8_t *p = d->data;
	while (len > n && *p == 0) {
		p++;
		len--;
	}
	assert_true(len <= n);
	memcpy(out + n - len, p, len);
}

static void make_signer(signer_t *s, bool ec, const char *kid)
{
	s->ec = ec;
	s->kid = kid;
	assert_int_equal(gnutls_privkey_init(&s->priv), 0);
	assert_int_equal(gnutls_privkey_generate(
	                     s->priv, ec ? GNUTLS_PK_ECDSA : GNUTLS_PK_RSA,
	                     ec ? GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1) : 2048, 0),
	                 0);
	assert_int_equal(gnutls_pubkey_init(&s->pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(s->pub, s->priv, 0, 0), 0);
}

static json_t *jwk_of(const signer_t *s)
{
	gnutls_datum_t a, b;
	json_t *k;
	if (s->ec) {
		gnutls_ecc_curve_t curve;
		assert_int_equal(
		    gnutls_pubkey_export_ecc_raw2(s->pub, &curve, &a, &b, GNUTLS_EXPORT_FLAG_NO_LZ),
		    0);
		uint8_t x[32], y[32];
		fixed(&a, x, 32);
		fixed(&b, y, 32);
		char *xs = b64url(x, 32), *ys = b64url(y, 32);
		k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "kid",
		              s->kid, "alg", "ES256", "x", xs, "y", ys);
		free(xs);
		free(ys);
	} else {
		assert_int_equal(
		    gnutls_pubkey_export_rsa_raw2(s->pub, &a, &b, GNUTLS_EXPORT_FLAG_NO_LZ), 0);
		char *n = b64url(a.data, a.size), *e = b64url(b.data, b.size);
		k = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", s->kid, "use",
		              "sig", "n", n, "e", e);
		free(n);
		free(e);
	}
	gnutls_free(a.data);
	gnutls_free(b.data);
	return k;
}

/* header.claims.signature with header {"alg":alg,"kid":kid} (kid NULL: none) signed by s. */
static char *sign_token(const signer_t *s, const char *alg, const char *kid, json_t *claims)
{
	json_t *h = kid ? json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid)
	                : json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	char *ht = json_dumps(h, JSON_COMPACT), *ct = json_dumps(claims, JSON_COMPACT);
	char *hb = b64url_str(ht), *cb = b64url_str(ct);
	size_t n = strlen(hb) + strlen(cb) + 2;
	char *input = malloc(n);
	snprintf(input, n, "%s.%s", hb, cb);
	char *sig;
	if (strcmp(alg, "none") == 0) {
		sig = strdup("");
	} else if (strcmp(alg, "HS256") == 0) {
		uint8_t mac[32];
		pl_auth_hmac_sha256(rsa_pem, strlen(rsa_pem), input, strlen(input), mac);
		sig = b64url(mac, 32);
	} else {
		gnutls_datum_t data = {(unsigned char *)input, (unsigned)strlen(input)}, out;
		assert_int_equal(
		    gnutls_privkey_sign_data(s->priv, GNUTLS_DIG_SHA256, 0, &data, &out), 0);
		if (s->ec) {
			gnutls_datum_t r, ss;
			assert_int_equal(gnutls_decode_rs_value(&out, &r, &ss), 0);
			uint8_t raw[64];
			fixed(&r, raw, 32);
			fixed(&ss, raw + 32, 32);
			sig = b64url(raw, 64);
			gnutls_free(r.data);
			gnutls_free(ss.data);
		} else {
			sig = b64url(out.data, out.size);
		}
		gnutls_free(out.data);
	}
	size_t tn = strlen(input) + strlen(sig) + 2;
	char *token = malloc(tn);
	snprintf(token, tn, "%s.%s", input, sig);
	free(sig);
	free(input);
	free(hb);
	free(cb);
	free(ht);
	free(ct);
	json_decref(h);
	json_decref(claims);
	return token;
}

static json_t *good_claims(void)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "iss", "https://idp.example", "aud",
	                 "dronepipe", "sub", "alice", "exp", (json_int_t)(NOW + 300), "nbf",
	                 (json_int_t)(NOW - 10), "iat", (json_int_t)(NOW - 10));
}

static int jwt_setup(void **state)
{
	(void)state;
	make_signer(&rsa_signer, false, "rsa-1");
	make_signer(&ec_signer, true, "ec-1");
	make_signer(&stranger, false, "rsa-1");
	gnutls_datum_t pem;
	assert_int_equal(gnutls_pubkey_export2(rsa_signer.pub, GNUTLS_X509_FMT_PEM, &pem), 0);
	rsa_pem = strndup((char *)pem.data, pem.size);
	gnutls_free(pem.data);
	json_t *keys = json_array();
	json_array_append_new(keys, jwk_of(&rsa_signer));
	json_array_append_new(keys, jwk_of(&ec_signer));
	/* keys that are skipped: encryption use, symmetric, another curve */
	json_array_append_new(keys,
	                      json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "h", "k", "AA"));
	json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv",
	                                      "P-384", "kid", "p384", "x", "AA", "y", "AA"));
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(doc, 0);
	jwks_path = write_temp(text);
	free(text);
	json_decref(doc);
	return 0;
}

static int jwt_teardown(void **state)
{
	(void)state;
	signer_t *all[] = {&rsa_signer, &ec_signer, &stranger};
	for (int i = 0; i < 3; i++) {
		gnutls_pubkey_deinit(all[i]->pub);
		gnutls_privkey_deinit(all[i]->priv);
	}
	unlink(jwks_path);
	free(jwks_path);
	free(rsa_pem);
	return 0;
}

static pl_auth_t *jwt_auth(void)
{
	char err[256] = "";
	pl_auth_opts_t o = {.jwks_file = jwks_path,
	                    .jwt_issuer = "https://idp.example",
	                    .jwt_audience = "dronepipe",
	                    .admin_claim = "roles",
	                    .admin_value = "dronepipe-admin",
	                    .clock_skew_s = 60};
	pl_auth_t *a = pl_auth_new_opts(&o, err, sizeof(err));
	if (!a)
		fail_msg("%s", err);
	return a;
}

static pl_auth_result_t check_token(const pl_auth_t *a, char *token, pl_principal_t *p, char *why,
                                    size_t why_size)
{
	size_t n = strlen(token) + 8;
	char *h = malloc(n);
	snprintf(h, n, "Bearer %s", token);
	pl_auth_result_t r = pl_auth_check(a, h, NOW, p, why, why_size);
	free(h);
	free(token);
	return r;
}

static void expect_invalid(const pl_auth_t *a, char *token, const char *want)
{
	pl_principal_t p;
	char why[256] = "";
	pl_auth_result_t r = check_token(a, token, &p, why, sizeof(why));
	if (r != PL_AUTH_INVALID || !strstr(why, want))
		fail_msg("result %d '%s', want invalid with '%s'", r, why, want);
}

static void test_jwt_good(void **state)
{
	(void)state;
	pl_auth_t *a = jwt_auth();
	assert_true(pl_auth_enabled(a));
	pl_principal_t p;
	char why[256] = "";
	assert_int_equal(check_token(a, sign_token(&rsa_signer, "RS256", "rsa-1", good_claims()),
	                             &p, why, sizeof(why)),
	                 PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_OWNER);
	assert_string_equal(p.owner_id, "alice");
	assert_int_equal(check_token(a, sign_token(&ec_signer, "ES256", "ec-1", good_claims()), &p,
	                             why, sizeof(why)),
	                 PL_AUTH_OK);
	assert_string_equal(p.owner_id, "alice");
	/* aud as an array; admin by a role in an array claim */
	json_t *c = good_claims();
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", "dronepipe"));
	json_object_set_new(c, "roles", json_pack("[s,s]", "reader", "dronepipe-admin"));
	assert_int_equal(
	    check_token(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), &p, why, sizeof(why)),
	    PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_ADMIN);
	/* within the clock skew: expired 30 s ago, valid from 30 s on */
	c = good_claims();
	json_object_set_new(c, "exp", json_integer(NOW - 30));
	json_object_set_new(c, "nbf", json_integer(NOW + 30));
	assert_int_equal(
	    check_token(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), &p, why, sizeof(why)),
	    PL_AUTH_OK);
	/* no nbf at all is fine */
	c = good_claims();
	json_object_del(c, "nbf");
	assert_int_equal(
	    check_token(a, sign_token(&ec_signer, "ES256", "ec-1", c), &p, why, sizeof(why)),
	    PL_AUTH_OK);
	pl_auth_destroy(a);
}

static void test_jwt_refused(void **state)
{
	(void)state;
	pl_auth_t *a = jwt_auth();
	json_t *c;
	c = good_claims();
	json_object_set_new(c, "exp", json_integer(NOW - 61));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "expired");
	c = good_claims();
	json_object_del(c, "exp");
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "no exp");
	c = good_claims();
	json_object_set_new(c, "exp", json_string("tomorrow"));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "no exp");
	c = good_claims();
	json_object_set_new(c, "nbf", json_integer(NOW + 61));
	expect_invalid(a, sign_token(&ec_signer, "ES256", "ec-1", c), "not valid yet");
	c = good_claims();
	json_object_set_new(c, "iss", json_string("https://evil.example"));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "issuer");
	c = good_claims();
	json_object_del(c, "iss");
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "issuer");
	c = good_claims();
	json_object_set_new(c, "aud", json_string("dronepipe-staging"));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "audience");
	c = good_claims();
	json_object_set_new(c, "aud", json_pack("[s]", "other"));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "audience");
	/* the owner claim: absent, not a string, with a blank, too long */
	c = good_claims();
	json_object_del(c, "sub");
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "sub");
	c = good_claims();
	json_object_set_new(c, "sub", json_integer(7));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "sub");
	c = good_claims();
	json_object_set_new(c, "sub", json_string("alice bob"));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "sub");
	char long_owner[PL_AUTH_OWNER_MAX + 2];
	memset(long_owner, 'o', sizeof(long_owner) - 1);
	long_owner[sizeof(long_owner) - 1] = '\0';
	c = good_claims();
	json_object_set_new(c, "sub", json_string(long_owner));
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), "sub");
	/* the admin claim with another value is no admin (and then needs an owner) */
	c = good_claims();
	json_object_set_new(c, "roles", json_string("dronepipe-administrator"));
	pl_principal_t p;
	char why[256];
	assert_int_equal(
	    check_token(a, sign_token(&rsa_signer, "RS256", "rsa-1", c), &p, why, sizeof(why)),
	    PL_AUTH_OK);
	assert_int_equal(p.role, PL_ROLE_OWNER);
	pl_auth_destroy(a);
}

static void test_jwt_signature_and_alg(void **state)
{
	(void)state;
	pl_auth_t *a = jwt_auth();
	/* signed by a key that is not in the JWKS but claims its kid */
	expect_invalid(a, sign_token(&stranger, "RS256", "rsa-1", good_claims()), "signature");
	/* an RSA signature presented as ES256, an EC one as RS256 */
	expect_invalid(a, sign_token(&rsa_signer, "ES256", "rsa-1", good_claims()), "kid");
	expect_invalid(a, sign_token(&ec_signer, "RS256", "ec-1", good_claims()), "kid");
	/* unknown kid, no kid */
	expect_invalid(a, sign_token(&rsa_signer, "RS256", "rsa-2", good_claims()), "kid");
	expect_invalid(a, sign_token(&rsa_signer, "RS256", NULL, good_claims()), "no kid");
	/* alg none, HS256 keyed with the public key (algorithm confusion), others */
	expect_invalid(a, sign_token(&rsa_signer, "none", "rsa-1", good_claims()),
	               "RS256 or ES256");
	expect_invalid(a, sign_token(&rsa_signer, "HS256", "rsa-1", good_claims()),
	               "RS256 or ES256");
	/* a signature byte changed, the claims changed after signing */
	char *t = sign_token(&rsa_signer, "RS256", "rsa-1", good_claims());
	size_t n = strlen(t);
	t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
	expect_invalid(a, t, "signature");
	t = sign_token(&ec_signer, "ES256", "ec-1", good_claims());
	char *dot = strchr(t, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	expect_invalid(a, t, "");
	/* signature cut off */
	t = sign_token(&rsa_signer, "RS256", "rsa-1", good_claims());
	*(strrchr(t, '.') + 1) = '\0';
	expect_invalid(a, t, "");
	pl_auth_destroy(a);
}

static void test_jwt_garbage(void **state)
{
	(void)state;
	pl_auth_t *a = jwt_auth();
	char *hdr_array = b64url_str("[\"RS256\"]");
	char *hdr_text = b64url_str("not json");
	char *hdr_noalg = b64url_str("{\"kid\":\"rsa-1\"}");
	char *hdr_dup = b64url_str("{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"rsa-1\"}");
	char buf[512];
	const char *shapes[] = {"a.b",      "a.b.c.d",     ".b.c", "a..c",
	                        "eyJ.eyJ.", "@@@.@@@.@@@", "...",  "a.b.c"};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		pl_principal_t p;
		char why[256];
		snprintf(buf, sizeof(buf), "Bearer %s", shapes[i]);
		if (pl_auth_check(a, buf, NOW, &p, why, sizeof(why)) != PL_AUTH_INVALID)
			fail_msg("shape %s accepted", shapes[i]);
	}
	const char *hdrs[] = {hdr_array, hdr_text, hdr_noalg, hdr_dup};
	for (size_t i = 0; i < 4; i++) {
		pl_principal_t p;
		char why[256];
		snprintf(buf, sizeof(buf), "Bearer %s.eyJzdWIiOiJhbGljZSJ9.c2ln", hdrs[i]);
		if (pl_auth_check(a, buf, NOW, &p, why, sizeof(why)) != PL_AUTH_INVALID)
			fail_msg("header %zu accepted", i);
	}
	/* a header that is invalid UTF-8 once decoded */
	uint8_t raw[] = {'{', '"', 'a', 'l', 'g', '"', ':', '"', 0xff, 0xfe, '"', '}'};
	char *hb = b64url(raw, sizeof(raw));
	snprintf(buf, sizeof(buf), "Bearer %s.e30.c2ln", hb);
	pl_principal_t p;
	char why[256];
	assert_int_equal(pl_auth_check(a, buf, NOW, &p, why, sizeof(why)), PL_AUTH_INVALID);
	free(hb);
	free(hdr_array);
	free(hdr_text);
	free(hdr_noalg);
	free(hdr_dup);
	pl_auth_destroy(a);
}

static void test_bad_jwks(void **state)
{
	(void)state;
	static const char *const files[] = {
	    "",
	    "not json",
	    "{}",
	    "{\"keys\":{}}",
	    "{\"keys\":[]}",
	    "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"x\"}]}",
	    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", /* short
	                                                                                   */
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"x\",\"x\":\"@@\",\"y\":\"AA\"}]"
	    "}",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *path = write_temp(files[i]);
		char err[256] = "";
		pl_auth_opts_t o = {.jwks_file = path, .jwt_issuer = "i", .jwt_audience = "a"};
		pl_auth_t *a = pl_auth_new_opts(&o, err, sizeof(err));
		if (a || !strstr(err, "DP_AUTH_JWKS_FILE"))
			fail_msg("jwks %zu: accepted or unclear error '%s'", i, err);
		unlink(path);
		free(path);
	}
	/* issuer and audience are required with a JWKS */
	char err[256];
	pl_auth_opts_t o = {.jwks_file = jwks_path, .jwt_issuer = "i"};
	assert_null(pl_auth_new_opts(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "DP_AUTH_JWT_AUDIENCE"));
	/* a JWKS key without kid */
	char *path = write_temp("{\"keys\":[]}");
	json_t *k = jwk_of(&ec_signer);
	json_object_del(k, "kid");
	json_t *doc = json_pack("{s:[o]}", "keys", k);
	json_dump_file(doc, path, 0);
	json_decref(doc);
	pl_auth_opts_t o2 = {.jwks_file = path, .jwt_issuer = "i", .jwt_audience = "a"};
	assert_null(pl_auth_new_opts(&o2, err, sizeof(err)));
	assert_non_null(strstr(err, "no kid"));
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_bad_key_files),
	    cmocka_unit_test(test_open_and_may),
	    cmocka_unit_test(test_track_tokens),
	    cmocka_unit_test(test_jwt_good),
	    cmocka_unit_test(test_jwt_refused),
	    cmocka_unit_test(test_jwt_signature_and_alg),
	    cmocka_unit_test(test_jwt_garbage),
	    cmocka_unit_test(test_bad_jwks),
	};
	return cmocka_run_group_tests_name("pipeline/auth", tests, jwt_setup, jwt_teardown);
}
