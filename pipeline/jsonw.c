/* jsonw.c — see jsonw.h. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "text.h"
#include "mem.h"

typedef pl_jsonw_t wbuf_t;

static void reserve(wbuf_t *w, size_t more)
{
	if (w->len + more < w->cap)
		return;
	while (w->len + more >= w->cap)
		w->cap *= 2;
	w->buf = pl_realloc(w->buf, w->cap);
}

static void put(wbuf_t *w, const char *s, size_t n)
{
	reserve(w, n);
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_char(wbuf_t *w, char c)
{
	reserve(w, 1);
	w->buf[w->len++] = c;
	w->buf[w->len] = '\0';
}

/* As jansson's dump_string without flags: '"', '\\' and bytes below 0x20 are escaped, the
 * rest (UTF-8, validated when the string was made) is copied. */
static void put_string(wbuf_t *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	put_char(w, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80) {
			/* valid UTF-8 as is; each byte that starts no sequence becomes U+FFFD, so
			 * the text is JSON whatever bytes it was given */
			size_t seq = pl_text_utf8_seq((const unsigned char *)s + i, n - i);
			if (seq > 0) {
				i += seq - 1;
				continue;
			}
			put(w, s + run, i - run);
			run = i + 1;
			put(w, "\\ufffd", 6);
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, s + run, i - run);
		run = i + 1;
		static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
		const char *hit = c ? memchr(from, c, sizeof(from) - 1) : NULL;
		char esc[6] = {'\\',       hit ? to[hit - from] : 'u', '0', '0', hex[c >> 4],
		               hex[c & 15]};
		size_t elen = hit ? 2 : 6;
		put(w, esc, elen);
	}
	put(w, s + run, n - run);
	put_char(w, '"');
}

/* Writes the decimal digits of u (at least one) backwards, ending before end; returns the
 * first. */
static char *digits_back(char *end, unsigned long long u)
{
	do
		*--end = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	return end;
}

size_t pl_json_integer_text(int64_t v, char out[24])
{
	char tmp[24], *p;
	/* unsigned arithmetic: -INT64_MIN does not fit an int64_t */
	p = digits_back(tmp + sizeof(tmp),
	                v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
	if (v < 0)
		*--p = '-';
	size_t len = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, len);
	out[len] = '\0';
	return len;
}

static void put_integer(wbuf_t *w, json_int_t v)
{
	char text[24];
	put(w, text, pl_json_integer_text((int64_t)v, text));
}

static const double p10[] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                             1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};

/* True with *c when the decimal *c * 10^-n reads back as d: llround(d * 10^n) or a neighbour. */
static bool read_back(double d, int n, long long *c)
{
	long long i = llround(d * p10[n]);
	for (long long k = 0; k <= 2; k++) {
		*c = i + (k == 2 ? -1 : k);
		if ((double)*c / p10[n] == d)
			return true;
	}
	return false;
}

/* The fast path, without printf: the shortest decimal with n places (n = 0, 1, ...) that reads
 * back as d, for 1e-4 <= |d| < 1e14, where %g writes no exponent (a rounding up to the next
 * power of ten included). A place count n is tried only while 10^-n is more than an ulp of d:
 * then at most one decimal with n places reads back as d, i * 10^-n with i < 2^53, and i / 10^n
 * is correctly rounded, as strtod is, so it reads back exactly when i / 10^n == d. The float
 * product d * 10^n may round to a neighbour of that i: the neighbours are tried too. The first n
 * that gives one is the shortest, and what the plain rule (pl_json_real_text) writes: every
 * decimal of fewer digits has fewer places, and the nearest decimal of its digit count, which
 * %.<P>g writes, is the only one that reads back. Returns 0 when no n is found; *no16 says
 * then that no decimal of at most 16 significant digits reads back as d (every place count
 * they need was tried: known for |d| >= 1, where the digit count of the integer part is exact). */
static size_t fixed(double d, char out[32], bool *no16)
{
	double a = fabs(d);
	*no16 = false;
	if (!(a >= 1e-4 && a < 1e14))
		return 0;
	int e2;
	frexp(a, &e2); /* a = m * 2^e2, m in [0.5, 1): an ulp of a is 2^(e2 - 53) */
	double ulp = ldexp(1.0, e2 - 53);
	int tried = 0; /* the place counts allowed: 0..tried-1 */
	while (tried < (int)(sizeof(p10) / sizeof(p10[0])) && ulp * p10[tried] < 1.0)
		tried++;
	long long found = 0;
	int n = -1;
	/* 6 places first, the common case (a coordinate, a weight): they hold every decimal of
	 * fewer places too, so one found there, its trailing zeros gone, is the shortest */
	if (tried > 6 && read_back(d, 6, &found))
		n = 6;
	for (int k = tried > 6 ? 7 : 0; n < 0 && k < tried; k++)
		if (read_back(d, k, &found))
			n = k;
	if (n < 0) {
		int e10 = 0; /* |d| in [10^e10, 10^(e10+1)) */
		while (e10 < 14 && a >= p10[e10 + 1])
			e10++;
		*no16 = a >= 1.0 && tried - 1 >= 15 - e10; /* 16 digits take 15 - e10 places */
		return 0;
	}
	unsigned long long u =
	    found < 0 ? 0ULL - (unsigned long long)found : (unsigned long long)found;
	int places = n;
	while (places > 0 && u % 10 == 0) { /* trailing zeros of the fraction go */
		u /= 10;
		places--;
	}
	char tmp[40], *p = tmp + sizeof(tmp);
	if (places == 0) /* an integer: ".0", or a reader takes it for one */
		*--p = '0';
	for (int k = 0; k < places; k++, u /= 10)
		*--p = (char)('0' + u % 10);
	*--p = '.';
	p = digits_back(p, u);
	if (found < 0)
		*--p = '-';
	size_t len = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, len);
	out[len] = '\0';
	return len;
}

size_t pl_json_real_text(double d, char out[32])
{
	if (d == 0) { /* 0.0 and -0.0 */
		memcpy(out, signbit(d) ? "-0.0" : "0.0", signbit(d) ? 5 : 4);
		return signbit(d) ? 4 : 3;
	}
	bool no16;
	size_t fast = fixed(d, out, &no16);
	if (fast)
		return fast;
	int n = 0;
	for (int prec = no16 ? 17 : 15; prec <= 17; prec++) {
		n = snprintf(out, 32, "%.*g", prec, d);
		if (prec == 17 || strtod(out, NULL) == d)
			break;
	}
	/* a dot or an exponent, or a reader takes it for an integer */
	if (!strchr(out, '.') && !strchr(out, 'e')) {
		memcpy(out + n, ".0", 3);
		n += 2;
	}
	/* "1e+20" -> "1e20", "1e-05" -> "1e-5", as json_dumps writes them */
	char *e = strchr(out, 'e');
	if (e) {
		char *start = e + 1, *end;
		if (*start == '+') {
			memmove(start, start + 1, strlen(start));
			n--;
		}
		if (*start == '-')
			start++;
		for (end = start; *end == '0' && end[1]; end++)
			;
		if (end != start) {
			memmove(start, end, strlen(end) + 1);
			n -= (int)(end - start);
		}
	}
	return (size_t)n;
}

typedef struct key {
	const char *s;
	size_t n;
	json_t *v;
} member_t;

/* memcmp order, the shorter first on a common prefix (jansson's compare_keys) */
static bool key_less(const member_t *a, const member_t *b)
{
	int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
	return c < 0 || (c == 0 && a->n < b->n);
}

static bool put_value(wbuf_t *w, const json_t *v, int depth);

static bool put_object(wbuf_t *w, const json_t *obj, int depth)
{
	size_t n = json_object_size(obj);
	member_t stack_keys[32];
	member_t *keys = n <= 32 ? stack_keys : pl_malloc(n * sizeof(*keys));
	size_t k = 0;
	/* jansson iterates without const */
	for (void *it = json_object_iter((json_t *)obj); it && k < n;
	     it = json_object_iter_next((json_t *)obj, it)) {
		member_t cur = {json_object_iter_key(it), json_object_iter_key_len(it),
		                json_object_iter_value(it)};
		size_t j = k++;
		for (; w->sorted && j > 0 && key_less(&cur, &keys[j - 1]); j--)
			keys[j] = keys[j - 1];
		keys[j] = cur;
	}
	bool ok = true;
	put_char(w, '{');
	for (size_t i = 0; i < k && ok; i++) {
		if (i)
			put_char(w, ',');
		put_string(w, keys[i].s, keys[i].n);
		put_char(w, ':');
		ok = put_value(w, keys[i].v, depth + 1);
	}
	put_char(w, '}');
	if (keys != stack_keys)
		pl_free(keys);
	return ok;
}

static bool put_value(wbuf_t *w, const json_t *v, int depth)
{
	if (depth > PL_JSONW_MAX_DEPTH)
		return false;
	char real[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return put_object(w, v, depth);
	case JSON_ARRAY:
		put_char(w, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				put_char(w, ',');
			if (!put_value(w, json_array_get(v, i), depth + 1))
				return false;
		}
		put_char(w, ']');
		return true;
	case JSON_STRING:
		put_string(w, json_string_value(v), json_string_length(v));
		return true;
	case JSON_INTEGER:
		put_integer(w, json_integer_value(v));
		return true;
	case JSON_REAL:
		put(w, real, pl_json_real_text(json_real_value(v), real));
		return true;
	case JSON_TRUE:
		put(w, "true", 4);
		return true;
	case JSON_FALSE:
		put(w, "false", 5);
		return true;
	case JSON_NULL:
		put(w, "null", 4);
		return true;
	}
	return false;
}

char *pl_json_text(const json_t *v, unsigned flags, size_t *len)
{
	if (!v)
		return NULL;
	wbuf_t w;
	pl_jsonw_init(&w, flags);
	if (!put_value(&w, v, 0)) {
		pl_free(w.buf);
		return NULL;
	}
	if (len)
		*len = w.len;
	return w.buf;
}

/* ---- the builder (jsonw.h) ---- */

void pl_jsonw_init(pl_jsonw_t *w, unsigned flags)
{
	*w = (pl_jsonw_t){pl_malloc(256), 0, 256, !(flags & PL_JSONW_INSERTION_ORDER)};
	w->buf[0] = '\0';
}

void pl_jsonw_raw(pl_jsonw_t *w, const char *s, size_t n)
{
	put(w, s, n);
}

void pl_jsonw_char(pl_jsonw_t *w, char c)
{
	put_char(w, c);
}

void pl_jsonw_string(pl_jsonw_t *w, const char *s, size_t n)
{
	put_string(w, s, n);
}

void pl_jsonw_integer(pl_jsonw_t *w, int64_t i)
{
	put_integer(w, (json_int_t)i);
}

void pl_jsonw_real(pl_jsonw_t *w, double d)
{
	char real[32];
	put(w, real, pl_json_real_text(d, real));
}

bool pl_jsonw_value(pl_jsonw_t *w, const json_t *v)
{
	return v && put_value(w, v, 0);
}

char *pl_jsonw_finish(pl_jsonw_t *w, size_t *len)
{
	if (len)
		*len = w->len;
	return w->buf;
}
