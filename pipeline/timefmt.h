/* timefmt.h — ISO-8601 / RFC 3339 date-times <-> epoch milliseconds (UTC).
 *
 * Accepted by pl_time_parse (anything else is PL_ERR_INVALID):
 *   YYYY-MM-DD 'T' hh:mm:ss [ ('.'|',') fraction ] offset
 *   - the date/time separator is 'T', 't' or one space (RFC 3339 section 5.6 note);
 *   - seconds are required; second 60 (a leap second) is accepted and counts as the first second
 *     of the next minute, since epoch time has no leap seconds;
 *   - the fraction has one or more digits; the first three are kept (truncated, not rounded);
 *   - offset is 'Z', 'z', +hh:mm, -hh:mm, +hhmm or -hhmm (hh 00..23, mm 00..59; -00:00 is UTC);
 *     an offset is REQUIRED: a local time without one is ambiguous and rejected;
 *   - a date alone ("2026-11-27") is REJECTED: a pickup needs a time, and guessing midnight UTC
 *     would silently move it by hours for clients east or west of Greenwich;
 *   - ranges are checked: month 1..12, day 1..(days in that month, leap years per the Gregorian
 *     rule), hour 0..23, minute 0..59, second 0..60; the UTC result must lie in
 *     [PL_TIME_MIN_MS, PL_TIME_MAX_MS] (years 0000..9999);
 *   - no leading/trailing whitespace, no trailing text.
 * Civil-date arithmetic is done here (proleptic Gregorian calendar), so results never depend on
 * the locale, the TZ variable or timegm(). Leaf module: pure functions, thread-safe. */
#ifndef PL_TIMEFMT_H
#define PL_TIMEFMT_H

#include <stdint.h>

#include "err.h"

/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in epoch milliseconds. */
#define PL_TIME_MIN_MS (-62167219200000LL)
#define PL_TIME_MAX_MS (253402300799999LL)

/* Parses text (NUL-terminated, borrowed) into *epoch_ms. PL_OK, or PL_ERR_INVALID when text is
 * NULL, malformed or out of range (then *epoch_ms is untouched). */
pl_err_t pl_time_parse(const char *text, int64_t *epoch_ms);

/* Formats as "2026-11-27T05:30:00.123Z" (always milliseconds, always 'Z', 24 characters).
 * PL_OK, or PL_ERR_INVALID when epoch_ms is outside [PL_TIME_MIN_MS, PL_TIME_MAX_MS] (then out
 * is ""). out is always NUL-terminated. */
pl_err_t pl_time_format(int64_t epoch_ms, char out[32]);

#endif
