/* text.h — the one sanitising path for text that came from outside (a request, a record) on its
 * way into an answer, a problem detail, a log line, a header or an event.
 *
 * Such text may be invalid UTF-8, contain control characters or be huge; a JSON builder refuses
 * invalid UTF-8 (jansson returns NULL), a header with CR/LF splits a response, and a byte-count
 * cut (snprintf "%.128s") can split a character. pl_text_clean turns any bytes into text that is
 * safe in every such place: valid UTF-8, no control character, bounded, cut only between
 * characters. pl_text_utf8_valid is for validation, where bad input is refused instead.
 *
 * Leaf module (over mem.h): pure functions, thread-safe. */
#ifndef PL_TEXT_H
#define PL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a shown id or value in a problem detail or reason: 128 bytes of text plus the cut
 * mark and NUL. */
#define PL_TEXT_SHOWN 136

/* Length (1..4) of the well-formed UTF-8 sequence at s (avail bytes readable), or 0 when the
 * byte at s starts none. Rejects overlong forms, surrogates and code points above U+10FFFF
 * (RFC 3629). */
size_t pl_text_utf8_seq(const unsigned char *s, size_t avail);

/* True when s[0..len) is well-formed UTF-8 (NUL bytes included as characters). */
bool pl_text_utf8_valid(const char *s, size_t len);

/* Copies src[0..len) (src may be NULL: empty) into dst as safe text, always NUL-terminated when
 * dst_size > 0:
 *   - each byte that starts no well-formed UTF-8 sequence becomes U+FFFD;
 *   - a control character (U+0000..U+001F, U+007F) becomes the four characters \xNN;
 *   - when the result does not fit dst_size - 1 bytes it is cut between two characters and
 *     ends with "..." (within dst_size).
 * Returns the length written (strlen(dst)). */
size_t pl_text_clean(char *dst, size_t dst_size, const char *src, size_t len);

/* pl_text_clean of the NUL-terminated text in buf, in place (buf holds size bytes). For a buffer
 * filled by snprintf from outside text: a cut sequence at its end, or any other bad byte, is
 * made safe. Returns the new length. */
size_t pl_text_clean_inplace(char *buf, size_t size);

/* Shortens len so that s[0..result) ends between two characters of well-formed UTF-8 (it drops
 * a sequence cut at the end); for cutting text that is known to be valid. */
size_t pl_text_utf8_cut(const char *s, size_t len);

/* pl_text_clean of src[0..len) into a new string of at most max bytes (plus the NUL); the caller
 * frees it with pl_free. Never NULL (allocation failure aborts, as everywhere). */
char *pl_text_clean_dup(const char *src, size_t len, size_t max);

#endif
