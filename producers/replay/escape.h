/* escape.h — text the CLI did not write itself (keys, headers and dp_error of dead letters,
 * client ids, group names) made safe to print. Such bytes may be invalid UTF-8, hold control
 * characters or NULs, or be megabytes long.
 *   - For a terminal (ops_escape_*): printable UTF-8 is kept; C0 controls, DEL and NUL become
 *     \n \r \t or \xHH, a backslash becomes \\, C1 controls and the invisible format characters
 *     that reorder or hide text (bidi overrides, zero-width, U+2028/9) become \uXXXX, every byte
 *     of an invalid UTF-8 sequence becomes \xHH. Nothing the terminal interprets gets through,
 *     and the escaping is unambiguous. A limit keeps at most that many input bytes, then says
 *     "...(truncated, N bytes)".
 *   - For JSON (ops_json_text): valid UTF-8 is kept (the encoder escapes controls and NULs),
 *     each byte of an invalid sequence becomes U+FFFD, so the document is always valid JSON.
 *     ops_json_print writes a document as one ASCII-only line (\uXXXX for everything else).
 * Ownership: buffers belong to the caller (ops_buf_t: pl_free(buf.data) or ops_buf_take).
 * Thread rules: pure functions; an ops_buf_t is used by one thread. */
#ifndef OPS_ESCAPE_H
#define OPS_ESCAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A growing, always NUL-terminated string (data == NULL until the first append). */
typedef struct ops_buf {
	char *data;
	size_t len, cap;
} ops_buf_t;

void ops_buf_append(ops_buf_t *buf, const void *bytes, size_t len);
void ops_buf_printf(ops_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (never NULL, "" when empty); the caller owns it (pl_free) and buf is reset. */
char *ops_buf_take(ops_buf_t *buf);

/* Appends bytes[0..len) escaped for a terminal; max_bytes = 0: no limit. */
void ops_escape_append(ops_buf_t *buf, const void *bytes, size_t len, size_t max_bytes);
/* The same into a new string (pl_free). NULL bytes give "-". */
char *ops_escape(const void *bytes, size_t len, size_t max_bytes);
/* The same for a C string (NULL gives "-"). */
char *ops_escape_str(const char *text, size_t max_bytes);

/* True when bytes[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool ops_utf8_valid(const void *bytes, size_t len);
/* A JSON string of bytes[0..len) (see above); NULL bytes give "". */
json_t *ops_json_text(const void *bytes, size_t len);
/* The same for a C string; NULL gives JSON null. */
json_t *ops_json_str(const char *text);
/* Writes doc as one compact, ASCII-only JSON line and a newline; a doc that cannot be encoded
 * (NULL) becomes {"error": ...} so the output stays parseable. Returns 0, or -1 for that case. */
int ops_json_print(FILE *out, const json_t *doc);

#endif
