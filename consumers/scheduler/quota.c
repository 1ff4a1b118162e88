/* quota.c — the per-owner in-flight limit's decision and reason (see quota.h). */
#include <stdio.h>
#include <string.h>

#include "quota.h"
#include "text.h"

bool quota_exceeded(int64_t limit, size_t in_flight)
{
	return limit > 0 && (uint64_t)in_flight >= (uint64_t)limit;
}

size_t quota_reason(char *out, size_t out_size, const char *owner_id, size_t in_flight,
                    int64_t limit)
{
	char shown[PL_TEXT_SHOWN];
	if (out_size == 0)
		return 0;
	pl_text_clean(shown, sizeof shown, owner_id, owner_id ? strlen(owner_id) : 0);
	int n =
	    snprintf(out, out_size, "owner %s already has %zu deliveries in flight (limit %lld)",
	             shown, in_flight, (long long)limit);
	if (n < 0) {
		out[0] = '\0';
		return 0;
	}
	/* a buffer too small cuts the text: keep it valid UTF-8 */
	return (size_t)n < out_size ? (size_t)n : pl_text_clean_inplace(out, out_size);
}
