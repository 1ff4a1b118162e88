/* ids.c — identifiers: UUID v4 and W3C trace context from the kernel's random bytes, UUID v5
 * (libuuid). Declared in kafka.h because they exist for event headers.
 * Random bytes come from getrandom(2) 256 at a time into a per-thread pool: one request of the
 * ingress needs 40 (two UUIDs and a span and trace id), and libuuid's uuid_generate_random
 * re-seeded random(3) and asked the kernel on every call (4% of the ingress's CPU). Not
 * fork-safe: a child would repeat its parent's pool (the services never fork). */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid.h>

#include "kafka.h"

#define POOL_SIZE 256

static _Thread_local unsigned char pool[POOL_SIZE];
static _Thread_local size_t pool_used = POOL_SIZE; /* bytes of pool already handed out */

static void random_bytes(unsigned char *out, size_t n)
{
	while (n > 0) {
		if (pool_used == POOL_SIZE) {
			size_t got = 0;
			while (got < POOL_SIZE) {
				ssize_t r = getrandom(pool + got, POOL_SIZE - got, 0);
				if (r > 0)
					got += (size_t)r;
			}
			pool_used = 0;
		}
		size_t take = POOL_SIZE - pool_used < n ? POOL_SIZE - pool_used : n;
		memcpy(out, pool + pool_used, take);
		memset(pool + pool_used, 0, take); /* handed out once */
		pool_used += take;
		out += take;
		n -= take;
	}
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void pl_uuid_v4(char out[37])
{
	unsigned char u[16];
	random_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	char h[33];
	hex(u, sizeof u, h);
	/* 8-4-4-4-12 */
	memcpy(out, h, 8);
	out[8] = '-';
	memcpy(out + 9, h + 8, 4);
	out[13] = '-';
	memcpy(out + 14, h + 12, 4);
	out[18] = '-';
	memcpy(out + 19, h + 16, 4);
	out[23] = '-';
	memcpy(out + 24, h + 20, 12);
	out[36] = '\0';
}

pl_err_t pl_uuid_v5(const char *ns, const void *name, size_t name_len, char out[37])
{
	uuid_t nsu, u;
	if (!ns || uuid_parse(ns, nsu) != 0)
		return PL_ERR_INVALID;
	uuid_generate_sha1(u, nsu, name, name_len);
	uuid_unparse_lower(u, out);
	return PL_OK;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static bool all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

bool pl_traceparent_parse(const char *tp, char trace_id[33])
{
	/* 00-<32 hex trace>-<16 hex span>-<2 hex flags>, lowercase, ids not all zero (W3C). */
	if (!tp || strlen(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return false;
	if (!all_hex(tp, 2) || memcmp(tp, "ff", 2) == 0 || !all_hex(tp + 3, 32) ||
	    !all_hex(tp + 36, 16) || !all_hex(tp + 53, 2))
		return false;
	if (all_zero(tp + 3, 32) || all_zero(tp + 36, 16))
		return false;
	if (trace_id) {
		memcpy(trace_id, tp + 3, 32);
		trace_id[32] = '\0';
	}
	return true;
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char buf[16];
	random_bytes(buf, nbytes);
	hex(buf, nbytes, out);
}

void pl_traceparent_child(const char *parent, char out[56])
{
	char trace[33], span[17];
	if (!pl_traceparent_parse(parent, trace)) {
		do
			random_hex(trace, 16);
		while (all_zero(trace, 32));
	}
	do
		random_hex(span, 8);
	while (all_zero(span, 16));
	const char *flags = (parent && pl_traceparent_parse(parent, NULL)) ? parent + 53 : "01";
	snprintf(out, 56, "00-%s-%s-%.2s", trace, span, flags);
}

int64_t pl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
