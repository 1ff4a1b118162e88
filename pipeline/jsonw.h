/* jsonw.h — the compact JSON text of a jansson value, written without json_dumps.
 *
 * Why: json_dumps was half of the delivery service's CPU in a replay (a dump callback per
 * token, a qsort per object, 17-digit reals through printf). This writer appends to one
 * growing buffer and sorts an object's keys with an insertion sort (objects here are small).
 *
 * The text is json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) byte for byte (JSON_COMPACT alone
 * with PL_JSONW_INSERTION_ORDER), except reals: they
 * are written with the fewest significant digits (15, 16 or 17) that read back as the same
 * double, so 47.5624 stays "47.5624" where json_dumps writes "47.562399999999997". Like
 * json_dumps, a real always shows a '.' or an exponent ("2.0", "1e20"), strings are escaped
 * the same way (", \ and control characters; other UTF-8 as is; a byte that is not UTF-8, which
 * a jansson string never holds but a builder's text may, is written as \ufffd), and keys are
 * ordered by their bytes, shorter first on a tie.
 *
 * The builder (pl_jsonw_t) writes the same text piece by piece, for a caller that has no
 * jansson value to write (e.g. a record read straight from Avro bytes).
 *
 * Leaf module over jansson: pure functions, thread-safe. */
#ifndef PL_JSONW_H
#define PL_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting written; a deeper value (or a cycle) gets NULL. */
#define PL_JSONW_MAX_DEPTH 64

/* flags of pl_json_text */
#define PL_JSONW_SORTED          0u /* object keys in byte order: the canonical text */
#define PL_JSONW_INSERTION_ORDER 1u /* object keys in the order they were set */

/* The text of v, NUL-terminated, or NULL when v is NULL or nested deeper than
 * PL_JSONW_MAX_DEPTH. Caller frees it with pl_free. *len (when len is not NULL) = its length. */
char *pl_json_text(const json_t *v, unsigned flags, size_t *len);

/* The shortest text of d that strtod reads back as d (at most 17 significant digits), as
 * json_dumps's reals are shaped (see above). d must be finite. out needs 32 bytes. Returns
 * the length. */
size_t pl_json_real_text(double d, char out[32]);

/* The decimal text of v, NUL-terminated, as written in JSON; out needs 24 bytes. Returns the
 * length. */
size_t pl_json_integer_text(int64_t v, char out[24]);

/* A text being built. Invariant: len < cap and buf[len] == '\0' after every append. Owns buf
 * until pl_jsonw_finish hands it over. */
typedef struct pl_jsonw {
	char *buf;
	size_t len, cap;
	bool sorted; /* object keys in byte order (flags of pl_jsonw_init) */
} pl_jsonw_t;

void pl_jsonw_init(pl_jsonw_t *w, unsigned flags);         /* flags as pl_json_text's */
void pl_jsonw_raw(pl_jsonw_t *w, const char *s, size_t n); /* as is: '{', ',', "null"... */
void pl_jsonw_char(pl_jsonw_t *w, char c);
/* quoted, escaped; any bytes: what is not UTF-8 is written as \ufffd, so the text is JSON */
void pl_jsonw_string(pl_jsonw_t *w, const char *s, size_t n);
void pl_jsonw_integer(pl_jsonw_t *w, int64_t i);
void pl_jsonw_real(pl_jsonw_t *w, double d); /* d finite: pl_json_real_text */
/* A jansson value, as pl_json_text writes it; false (and w unchanged or cut) when v is NULL
 * or nested deeper than PL_JSONW_MAX_DEPTH. */
bool pl_jsonw_value(pl_jsonw_t *w, const json_t *v);
/* The text (caller frees with pl_free); w is spent. */
char *pl_jsonw_finish(pl_jsonw_t *w, size_t *len);

#endif
