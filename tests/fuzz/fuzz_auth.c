/* fuzz_auth.c — libFuzzer target of the bearer-credential check (pipeline/auth.c, auth_jwt.c):
 * any bytes as the Authorization header, against a key file and a JWKS with one RSA and one EC
 * key (made once, here). It must never crash, leak or accept: nothing but the real keys, which
 * the fuzzer cannot guess, may authenticate; a forged token shaped like a JWT goes through the
 * header parse, kid lookup and libjwt. */
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

static pl_auth_t *auth;

static char *b64url(const uint8_t *in, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4), *o = out;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		*o++ = t[v >> 18 & 63];
		*o++ = t[v >> 12 & 63];
		if (i + 1 < n)
			*o++ = t[v >> 6 & 63];
		if (i + 2 < n)
			*o++ = t[v & 63];
	}
	*o = '\0';
	return out;
}

static void setup(void)
{
	gnutls_privkey_t rsa, ec;
	gnutls_pubkey_t rpub, epub;
	gnutls_privkey_init(&rsa);
	gnutls_privkey_init(&ec);
	gnutls_privkey_generate(rsa, GNUTLS_PK_RSA, 2048, 0);
	gnutls_privkey_generate(ec, GNUTLS_PK_ECDSA,
	                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	gnutls_pubkey_init(&rpub);
	gnutls_pubkey_init(&epub);
	gnutls_pubkey_import_privkey(rpub, rsa, 0, 0);
	gnutls_pubkey_import_privkey(epub, ec, 0, 0);
	gnutls_datum_t n, e, x, y;
	gnutls_ecc_curve_t curve;
	gnutls_pubkey_export_rsa_raw2(rpub, &n, &e, GNUTLS_EXPORT_FLAG_NO_LZ);
	gnutls_pubkey_export_ecc_raw2(epub, &curve, &x, &y, 0);
	uint8_t xs[32] = {0}, ys[32] = {0};
	memcpy(xs + 32 - (x.size > 32 ? 32 : x.size), x.data + (x.size > 32 ? x.size - 32 : 0),
	       x.size > 32 ? 32 : x.size);
	memcpy(ys + 32 - (y.size > 32 ? 32 : y.size), y.data + (y.size > 32 ? y.size - 32 : 0),
	       y.size > 32 ? 32 : y.size);
	char *bn = b64url(n.data, n.size), *be = b64url(e.data, e.size), *bx = b64url(xs, 32),
	     *by = b64url(ys, 32);
	char jwks[4096];
	snprintf(jwks, sizeof(jwks),
	         "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\",\"e\":\"%s\"},"
	         "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\",\"x\":\"%s\",\"y\":\"%s\"}]}",
	         bn, be, bx, by);
	char jpath[] = "/tmp/dp-fuzz-jwks-XXXXXX", kpath[] = "/tmp/dp-fuzz-keys-XXXXXX";
	int fd = mkstemp(jpath);
	if (write(fd, jwks, strlen(jwks)) < 0)
		abort();
	close(fd);
	fd = mkstemp(kpath);
	static const char keys[] = "a-real-key-nobody-guesses-0123456789 admin\n";
	if (write(fd, keys, sizeof(keys) - 1) < 0)
		abort();
	close(fd);
	char err[256];
	pl_auth_opts_t o = {.api_keys_file = kpath,
	                    .jwks_file = jpath,
	                    .jwt_issuer = "i",
	                    .jwt_audience = "a",
	                    .admin_claim = "roles",
	                    .admin_value = "admin",
	                    .clock_skew_s = 60};
	auth = pl_auth_new_opts(&o, err, sizeof(err));
	if (!auth) {
		fprintf(stderr, "fuzz_auth setup: %s\n", err);
		abort();
	}
	unlink(jpath);
	unlink(kpath);
	free(bn), free(be), free(bx), free(by);
	gnutls_free(n.data), gnutls_free(e.data), gnutls_free(x.data), gnutls_free(y.data);
	gnutls_pubkey_deinit(rpub), gnutls_pubkey_deinit(epub);
	gnutls_privkey_deinit(rsa), gnutls_privkey_deinit(ec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!auth)
		setup();
	char *h = malloc(size + 8);
	memcpy(h, "Bearer ", 7);
	memcpy(h + 7, data, size);
	h[size + 7] = '\0';
	pl_principal_t p;
	char why[256];
	if (pl_auth_check(auth, h, 1800000000, &p, why, sizeof(why)) == PL_AUTH_OK &&
	    strcmp(h + 7, "a-real-key-nobody-guesses-0123456789") != 0)
		abort(); /* accepted something that is not the key */
	/* the raw bytes as the whole header too (other schemes, no scheme) */
	memcpy(h, data, size);
	h[size] = '\0';
	if (pl_auth_check(auth, h, 1800000000, &p, why, sizeof(why)) == PL_AUTH_OK &&
	    strcmp(h, "Bearer a-real-key-nobody-guesses-0123456789") != 0 &&
	    strcasecmp(h, "bearer a-real-key-nobody-guesses-0123456789") != 0)
		abort();
	free(h);
	return 0;
}
