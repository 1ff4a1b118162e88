/* timefmt.c — RFC 3339 parsing and formatting with our own civil-date arithmetic (the
 * days-from-civil algorithms of H. Hinnant, proleptic Gregorian). Owns no state. */
#include "timefmt.h"

#include <stdbool.h>
#include <stddef.h>

#define MS_PER_DAY 86400000LL

static bool is_leap(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Days since 1970-01-01 of a civil date (month 1..12, day 1..31). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
	year -= month <= 2;
	int64_t era = (year >= 0 ? year : year - 399) / 400;
	int64_t yoe = year - era * 400;
	int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	int64_t doe = days - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

/* Reads exactly n decimal digits at *p; advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int value = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		value = value * 10 + (c - '0');
	}
	*p += n;
	*out = value;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

pl_err_t pl_time_parse(const char *text, int64_t *epoch_ms)
{
	if (!text || !epoch_ms)
		return PL_ERR_INVALID;
	const char *p = text;
	int year, month, day, hour, minute, second, millis = 0;
	if (!digits(&p, 4, &year) || !expect(&p, '-') || !digits(&p, 2, &month) ||
	    !expect(&p, '-') || !digits(&p, 2, &day))
		return PL_ERR_INVALID;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return PL_ERR_INVALID;
	p++;
	if (!digits(&p, 2, &hour) || !expect(&p, ':') || !digits(&p, 2, &minute) ||
	    !expect(&p, ':') || !digits(&p, 2, &second))
		return PL_ERR_INVALID;
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return PL_ERR_INVALID;
		int n = 0;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				millis = millis * 10 + (*p - '0');
		/* ".5" means 500 ms, ".12" 120 ms. */
		for (; n < 3; n++)
			millis *= 10;
	}
	int offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, off_h, off_m;
		p++;
		if (!digits(&p, 2, &off_h))
			return PL_ERR_INVALID;
		if (*p == ':')
			p++;
		if (!digits(&p, 2, &off_m) || off_h > 23 || off_m > 59)
			return PL_ERR_INVALID;
		offset_min = sign * (off_h * 60 + off_m);
	} else {
		return PL_ERR_INVALID;
	}
	if (*p != '\0')
		return PL_ERR_INVALID;
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
	    minute > 59 || second > 60)
		return PL_ERR_INVALID;
	int64_t ms =
	    days_from_civil(year, month, day) * MS_PER_DAY +
	    ((int64_t)hour * 3600 + minute * 60 + second - (int64_t)offset_min * 60) * 1000 +
	    millis;
	if (ms < PL_TIME_MIN_MS || ms > PL_TIME_MAX_MS)
		return PL_ERR_INVALID;
	*epoch_ms = ms;
	return PL_OK;
}

/* Writes value (0 <= value < 10^width) zero-padded to width digits, then `after`. */
static char *put_digits(char *p, int value, int width, char after)
{
	for (int i = width - 1; i >= 0; i--, value /= 10)
		p[i] = (char)('0' + value % 10);
	p[width] = after;
	return p + width + 1;
}

pl_err_t pl_time_format(int64_t epoch_ms, char out[32])
{
	out[0] = '\0';
	if (epoch_ms < PL_TIME_MIN_MS || epoch_ms > PL_TIME_MAX_MS)
		return PL_ERR_INVALID;
	/* Floor division so times before 1970 land on the right day. */
	int64_t days = epoch_ms / MS_PER_DAY, rest = epoch_ms % MS_PER_DAY;
	if (rest < 0) {
		rest += MS_PER_DAY;
		days--;
	}
	int64_t year;
	int month, day;
	civil_from_days(days, &year, &month, &day);
	int ms = (int)(rest % 1000), secs = (int)(rest / 1000);
	char *p = out;
	p = put_digits(p, (int)year, 4, '-');
	p = put_digits(p, month, 2, '-');
	p = put_digits(p, day, 2, 'T');
	p = put_digits(p, secs / 3600, 2, ':');
	p = put_digits(p, secs / 60 % 60, 2, ':');
	p = put_digits(p, secs % 60, 2, '.');
	p = put_digits(p, ms, 3, 'Z');
	*p = '\0';
	return PL_OK;
}
