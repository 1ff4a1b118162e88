/* log.h — structured logging: one JSON object per line on stdout.
 *
 * Line: {"ts":"2026-11-27T05:30:00.123Z","level":"info","svc":"ingress","event":"started",
 *        "msg":"...", <context fields>, <thread context: trace_id, delivery_id>}
 * `event` is a stable snake_case key for grepping and alerting; `msg` is for people.
 * Library logs (librdkafka, libmicrohttpd, mongoc) are routed here by their wrapper modules.
 * Thread rules: every function is thread-safe; a line is written with one write(2), so lines
 * from different threads never interleave. The thread context (pl_log_ctx_*) is per thread: the
 * stage loop sets trace_id/delivery_id around a handler call so every line it logs carries them. */
#ifndef PL_LOG_H
#define PL_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum pl_log_level {
	PL_LOG_DEBUG = 0,
	PL_LOG_INFO,
	PL_LOG_WARN,
	PL_LOG_ERROR,
	PL_LOG_FATAL,
} pl_log_level_t;

typedef enum pl_log_field_type {
	PL_LOG_FIELD_END = 0,
	PL_LOG_FIELD_STR,
	PL_LOG_FIELD_INT
} pl_log_field_type_t;

typedef struct pl_log_field {
	const char *key;
	pl_log_field_type_t type;
	const char *str; /* PL_LOG_FIELD_STR; NULL is written as JSON null */
	int64_t num;     /* PL_LOG_FIELD_INT */
} pl_log_field_t;

#define PL_LS(k, v) ((pl_log_field_t){.key = (k), .type = PL_LOG_FIELD_STR, .str = (v)})
#define PL_LI(k, v) ((pl_log_field_t){.key = (k), .type = PL_LOG_FIELD_INT, .num = (int64_t)(v)})
/* A terminated field list for pl_log: PL_LOG_FIELDS(PL_LS("topic", t), PL_LI("partition", p)) */
#define PL_LOG_FIELDS(...) ((const pl_log_field_t[]){__VA_ARGS__, {0}})

/* Sets the service name and minimum level. Call once at start; before it, svc is "dronepipe". */
void pl_log_init(const char *svc, pl_log_level_t min_level);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int pl_log_level_parse(const char *name);
const char *pl_log_level_name(pl_log_level_t level);
int pl_log_enabled(pl_log_level_t level);

/* Writes one line. fields may be NULL. fmt is printf-style for msg. */
void pl_log(pl_log_level_t level, const char *event, const pl_log_field_t *fields, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));

/* Per-thread context copied into every line of this thread until cleared. Values are copied. */
void pl_log_ctx_set(const char *trace_id, const char *delivery_id);
void pl_log_ctx_clear(void);

/* Redirects output (tests); fd -1 restores stdout. */
void pl_log_set_fd(int fd);

/* JSON-escapes src (len bytes) into dst as the body of a JSON string (no quotes), always
 * NUL-terminating; invalid UTF-8 bytes become U+FFFD. Returns the length it needed (excluding the
 * NUL), which may exceed dst_size - 1 when truncated. Exposed for tests and reuse. */
size_t pl_log_escape(char *dst, size_t dst_size, const char *src, size_t len);

#endif
