/* jsonw.c — see jsonw.h. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "mem.h"

/* Invariant: len < cap and buf[len] == '\0' after every append. */
typedef struct wbuf {
	char *buf;
	size_t len, cap;
	bool sorted;
} wbuf_t;

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

static void put_integer(wbuf_t *w, json_int_t v)
{
	char tmp[24], *p;
	/* unsigned arithmetic: -LLONG_MIN does not fit a json_int_t */
	p = digits_back(tmp + sizeof(tmp),
	                v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
	if (v < 0)
		*--p = '-';
	put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* The common case, fast: a real that is a decimal with at most 6 places (a coordinate, a
 * weight), between 1e-4 and 1e9, where %g would write it without an exponent. i / 1e6 is
 * correctly rounded, as strtod is, so when it gives d back the decimal i * 10^-6 reads back as
 * d; no shorter decimal does (two decimals of at most 6 places that read back as the same d
 * would be 1e-6 apart, more than an ulp here). Returns 0 when d is not such a real. */
static size_t fixed6(double d, char out[32])
{
	double a = fabs(d);
	if (!(a >= 1e-4 && a < 1e9))
		return 0;
	long long i = llround(d * 1e6);
	if ((double)i / 1e6 != d)
		return 0;
	unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
	char tmp[32], *p = tmp + sizeof(tmp);
	int places = 6;
	while (places > 1 && u % 10 == 0) { /* trailing zeros of the fraction go, one digit stays */
		u /= 10;
		places--;
	}
	for (int k = 0; k < places; k++, u /= 10)
		*--p = (char)('0' + u % 10);
	*--p = '.';
	p = digits_back(p, u);
	if (i < 0)
		*--p = '-';
	size_t n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

size_t pl_json_real_text(double d, char out[32])
{
	size_t fast = fixed6(d, out);
	if (fast)
		return fast;
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
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
	wbuf_t w = {pl_malloc(256), 0, 256, !(flags & PL_JSONW_INSERTION_ORDER)};
	w.buf[0] = '\0';
	if (!put_value(&w, v, 0)) {
		pl_free(w.buf);
		return NULL;
	}
	if (len)
		*len = w.len;
	return w.buf;
}
