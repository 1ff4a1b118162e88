/* ids.c — identifiers: UUID v4/v5 (libuuid) and W3C trace context. Owns nothing.
 * Declared in kafka.h because they exist for event headers. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid.h>

#include "kafka.h"

void pl_uuid_v4(char out[37])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
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
	size_t got = 0;
	while (got < nbytes) {
		ssize_t n = getrandom(buf + got, nbytes - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
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
