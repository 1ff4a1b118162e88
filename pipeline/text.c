/* text.c — sanitising text from outside (see text.h). Owns nothing. */
#include <stdint.h>
#include <string.h>

#include "mem.h"
#include "text.h"

size_t pl_text_utf8_seq(const unsigned char *s, size_t avail)
{
	if (avail == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

bool pl_text_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = pl_text_utf8_seq(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t pl_text_utf8_cut(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	/* step back over at most 3 continuation bytes to the start of the last sequence */
	size_t start = len;
	while (start > 0 && len - start < 4 && (u[start - 1] & 0xC0) == 0x80)
		start--;
	if (start == 0 || len - start >= 4)
		return len; /* no lead byte in reach: nothing that a cut could have split */
	size_t lead = start - 1;
	if (u[lead] < 0xC0)
		return len;
	size_t n = pl_text_utf8_seq(u + lead, len - lead);
	return n == len - lead ? len : lead;
}

size_t pl_text_clean(char *dst, size_t dst_size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	static const char mark[] = "...";
	if (dst_size == 0)
		return 0;
	const unsigned char *s = (const unsigned char *)src;
	size_t cap = dst_size - 1, out = 0;
	/* the last position where the cut mark still fits after what was written */
	size_t keep = 0;
	bool cut = false;
	for (size_t i = 0; s && i < len;) {
		char piece[4];
		const char *p = piece;
		size_t plen, adv = 1;
		unsigned char c = s[i];
		if (c < 0x20 || c == 0x7F) {
			piece[0] = '\\';
			piece[1] = 'x';
			piece[2] = hex[c >> 4];
			piece[3] = hex[c & 15];
			plen = 4;
		} else if (c < 0x80) {
			p = (const char *)s + i;
			plen = 1;
		} else if ((adv = pl_text_utf8_seq(s + i, len - i)) > 0) {
			p = (const char *)s + i;
			plen = adv;
		} else {
			memcpy(piece, "\xEF\xBF\xBD", 3); /* U+FFFD */
			plen = 3;
			adv = 1;
		}
		if (out + plen > cap) {
			cut = true;
			break;
		}
		memcpy(dst + out, p, plen);
		out += plen;
		if (out + sizeof(mark) - 1 <= cap)
			keep = out;
		i += adv;
	}
	if (cut) {
		if (keep + sizeof(mark) - 1 <= cap) {
			memcpy(dst + keep, mark, sizeof(mark) - 1);
			out = keep + sizeof(mark) - 1;
		} else {
			out = keep; /* too small even for the mark */
		}
	}
	dst[out] = '\0';
	return out;
}

size_t pl_text_clean_inplace(char *buf, size_t size)
{
	if (size == 0)
		return 0;
	size_t len = strnlen(buf, size);
	if (len == size) /* not terminated within size: treat the last byte as the NUL */
		len = size - 1;
	/* a sequence cut by the filler's bound is dropped before cleaning, not replaced */
	len = pl_text_utf8_cut(buf, len);
	char tmp[4096];
	char *copy = tmp;
	if (len >= sizeof(tmp)) {
		/* large buffers are rare (reasons, details): clean from the end of a safe prefix */
		len = pl_text_utf8_cut(buf, sizeof(tmp) - 1);
	}
	memcpy(copy, buf, len);
	return pl_text_clean(buf, size, copy, len);
}

char *pl_text_clean_dup(const char *src, size_t len, size_t max)
{
	/* each input byte gives at most 4 output bytes (\xNN, or U+FFFD for 3) */
	size_t need = len > (SIZE_MAX - 1) / 4 ? SIZE_MAX - 1 : len * 4;
	size_t size = (need < max ? need : max) + 1;
	char *dst = pl_malloc(size);
	pl_text_clean(dst, size, src, len);
	return dst;
}
