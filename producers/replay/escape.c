/* escape.c — hostile text made safe for a terminal and for JSON (see escape.h), and the growing
 * buffer the CLI builds unbounded text in. Owns nothing beyond the buffers it returns. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "mem.h"

static void buf_reserve(ops_buf_t *b, size_t more)
{
	if (b->data && b->len + more < b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap <= b->len + more)
		cap *= 2;
	b->data = pl_realloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void ops_buf_append(ops_buf_t *b, const void *bytes, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, bytes, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void ops_buf_printf(ops_buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *ops_buf_take(ops_buf_t *b)
{
	char *s = b->data ? b->data : pl_strdup("");
	memset(b, 0, sizeof(*b));
	return s;
}

/* Length (1-4) of the well-formed UTF-8 sequence at s with its code point, 0 when the byte at s
 * does not start one (RFC 3629: shortest form only, no surrogates, at most U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

bool ops_utf8_valid(const void *bytes, size_t len)
{
	const unsigned char *s = bytes;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = utf8_seq(s + i, len - i, &cp);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* Code points a terminal must not get as they are: C1 controls (some terminals act on them) and
 * format characters that reorder or hide text (bidi embeddings/overrides/isolates, zero-width
 * characters, line/paragraph separators, the BOM). */
static bool invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x61c ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	       (cp >= 0xe0000 && cp <= 0xe007f);
}

void ops_escape_append(ops_buf_t *b, const void *bytes, size_t len, size_t max_bytes)
{
	const unsigned char *s = bytes;
	size_t n = max_bytes && len > max_bytes ? max_bytes : len;
	buf_reserve(b, n + 16);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8_seq(s + i, n - i, &cp);
		if (k == 0) {
			ops_buf_printf(b, "\\x%02x", s[i]);
			i++;
			continue;
		}
		if (cp == '\\')
			ops_buf_append(b, "\\\\", 2);
		else if (cp == '\n')
			ops_buf_append(b, "\\n", 2);
		else if (cp == '\r')
			ops_buf_append(b, "\\r", 2);
		else if (cp == '\t')
			ops_buf_append(b, "\\t", 2);
		else if (cp < 0x20 || cp == 0x7f)
			ops_buf_printf(b, "\\x%02x", (unsigned)cp);
		else if (invisible(cp))
			ops_buf_printf(b, "\\u%04x", (unsigned)cp);
		else
			ops_buf_append(b, s + i, k);
		i += k;
	}
	if (n < len)
		ops_buf_printf(b, "...(truncated, %zu bytes)", len);
}

char *ops_escape(const void *bytes, size_t len, size_t max_bytes)
{
	if (!bytes)
		return pl_strdup("-");
	ops_buf_t b = {0};
	ops_escape_append(&b, bytes, len, max_bytes);
	return ops_buf_take(&b);
}

char *ops_escape_str(const char *text, size_t max_bytes)
{
	return ops_escape(text, text ? strlen(text) : 0, max_bytes);
}

json_t *ops_json_text(const void *bytes, size_t len)
{
	if (!bytes)
		return json_string("");
	if (ops_utf8_valid(bytes, len))
		return json_stringn(bytes, len);
	const unsigned char *s = bytes;
	ops_buf_t b = {0};
	buf_reserve(&b, len + 16);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = utf8_seq(s + i, len - i, &cp);
		if (k == 0) {
			ops_buf_append(&b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
		} else {
			ops_buf_append(&b, s + i, k);
			i += k;
		}
	}
	json_t *j = json_stringn(b.data, b.len);
	pl_free(b.data);
	return j;
}

json_t *ops_json_str(const char *text)
{
	return text ? ops_json_text(text, strlen(text)) : json_null();
}

int ops_json_print(FILE *out, const json_t *doc)
{
	char *line = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	if (!line) {
		fputs("{\"error\":\"this output could not be encoded as JSON\"}\n", out);
		return -1;
	}
	fputs(line, out);
	fputc('\n', out);
	free(line);
	return 0;
}
