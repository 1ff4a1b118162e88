/* log.c — structured logging: one JSON object per line, written with one write(2).
 *
 * Owns the process log settings (service name, minimum level, output fd) and the per-thread
 * context (trace_id, delivery_id). A line is built in a stack buffer and moves to the heap only
 * when it outgrows it, so a long message is never cut mid-escape. The write itself happens under
 * a mutex: write(2) on a pipe is only atomic up to PIPE_BUF, and lines may be longer. */
#include "log.h"
#include "text.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"

#define SVC_MAX    64
#define CTX_MAX    128 /* trace_id (55) and delivery_id (36) fit; longer values are cut */
#define LINE_STACK 2048
#define MSG_STACK  1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards svc and the write */
static char svc[SVC_MAX] = "dronepipe";
static atomic_int min_level = PL_LOG_INFO;
static atomic_int out_fd = -1; /* -1 = stdout */

static _Thread_local char ctx_trace_id[CTX_MAX];
static _Thread_local char ctx_delivery_id[CTX_MAX];

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void pl_log_init(const char *name, pl_log_level_t level)
{
	pthread_mutex_lock(&lock);
	snprintf(svc, sizeof(svc), "%s", name ? name : "dronepipe");
	pthread_mutex_unlock(&lock);
	atomic_store(&min_level, (int)level);
}

int pl_log_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = PL_LOG_DEBUG; i <= PL_LOG_ERROR; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *pl_log_level_name(pl_log_level_t level)
{
	if ((unsigned)level > PL_LOG_FATAL)
		return "unknown";
	return level_names[level];
}

int pl_log_enabled(pl_log_level_t level)
{
	return (int)level >= atomic_load(&min_level);
}

void pl_log_set_fd(int fd)
{
	atomic_store(&out_fd, fd);
}

void pl_log_ctx_set(const char *trace_id, const char *delivery_id)
{
	snprintf(ctx_trace_id, sizeof(ctx_trace_id), "%s", trace_id ? trace_id : "");
	snprintf(ctx_delivery_id, sizeof(ctx_delivery_id), "%s", delivery_id ? delivery_id : "");
}

void pl_log_ctx_clear(void)
{
	ctx_trace_id[0] = '\0';
	ctx_delivery_id[0] = '\0';
}

size_t pl_log_escape(char *dst, size_t dst_size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t need = 0;   /* bytes the full escape needs */
	size_t out = 0;    /* bytes written to dst */
	bool full = false; /* once a piece does not fit, nothing more is written */
	size_t cap = dst_size ? dst_size - 1 : 0;
	char piece[8];

	for (size_t i = 0; s && i < len;) {
		size_t plen, adv = 1;
		const char *p = piece;
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			piece[0] = '\\';
			piece[1] = (char)c;
			plen = 2;
		} else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			piece[0] = '\\';
			piece[1] = c == '\n'   ? 'n'
			           : c == '\r' ? 'r'
			           : c == '\t' ? 't'
			           : c == '\b' ? 'b'
			                       : 'f';
			plen = 2;
		} else if (c < 0x20 || c == 0x7F) {
			memcpy(piece, "\\u00", 4);
			piece[4] = hex[c >> 4];
			piece[5] = hex[c & 0xF];
			plen = 6;
		} else if (c < 0x80) {
			piece[0] = (char)c;
			plen = 1;
		} else if ((adv = pl_text_utf8_seq(s + i, len - i)) > 0) {
			p = (const char *)s + i;
			plen = adv;
		} else {
			memcpy(piece, "\xEF\xBF\xBD", 3); /* U+FFFD for each invalid byte */
			plen = 3;
			adv = 1;
		}
		if (!full && out + plen <= cap) {
			memcpy(dst + out, p, plen);
			out += plen;
		} else {
			full = true; /* never a partial escape or a partial UTF-8 sequence */
		}
		need += plen;
		i += adv;
	}
	if (dst_size)
		dst[out] = '\0';
	return need;
}

/* A line under construction: starts in caller-provided stack memory, moves to the heap. */
typedef struct line {
	char *buf;
	size_t len, cap;
	bool heap;
} line_t;

static void line_reserve(line_t *line, size_t more)
{
	if (line->len + more + 1 <= line->cap)
		return;
	size_t cap = line->cap * 2;
	while (cap < line->len + more + 1)
		cap *= 2;
	if (line->heap) {
		line->buf = pl_realloc(line->buf, cap);
	} else {
		char *heap = pl_malloc(cap);
		memcpy(heap, line->buf, line->len);
		line->buf = heap;
		line->heap = true;
	}
	line->cap = cap;
}

static void line_raw(line_t *line, const char *s, size_t n)
{
	line_reserve(line, n);
	memcpy(line->buf + line->len, s, n);
	line->len += n;
	line->buf[line->len] = '\0';
}

static void line_str(line_t *line, const char *s)
{
	line_raw(line, s, strlen(s));
}

/* Appends "s" as a JSON string, quotes included. */
static void line_json(line_t *line, const char *s, size_t n)
{
	line_raw(line, "\"", 1);
	size_t need = pl_log_escape(line->buf + line->len, line->cap - line->len, s, n);
	if (line->len + need + 1 > line->cap) {
		line_reserve(line, need);
		pl_log_escape(line->buf + line->len, line->cap - line->len, s, n);
	}
	line->len += need;
	line_raw(line, "\"", 1);
}

/* Appends ,"key":"value". */
static void line_field(line_t *line, const char *key, const char *value)
{
	line_raw(line, ",", 1);
	line_json(line, key, strlen(key));
	line_raw(line, ":", 1);
	if (value)
		line_json(line, value, strlen(value));
	else
		line_str(line, "null");
}

static void format_ts(char *out, size_t size)
{
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report it */
		buf += n;
		len -= (size_t)n;
	}
}

void pl_log(pl_log_level_t level, const char *event, const pl_log_field_t *fields, const char *fmt,
            ...)
{
	if (!pl_log_enabled(level))
		return;

	char msg_stack[MSG_STACK];
	char *msg = msg_stack;
	va_list ap;
	va_start(ap, fmt);
	int n = fmt ? vsnprintf(msg_stack, sizeof(msg_stack), fmt, ap) : 0;
	va_end(ap);
	if (n < 0) {
		n = 0;
		msg_stack[0] = '\0';
	} else if ((size_t)n >= sizeof(msg_stack)) {
		msg = pl_malloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	} else if (!fmt) {
		msg_stack[0] = '\0';
	}

	char ts[40], name[SVC_MAX];
	format_ts(ts, sizeof(ts));
	pthread_mutex_lock(&lock);
	memcpy(name, svc, sizeof(name));
	pthread_mutex_unlock(&lock);

	char line_stack[LINE_STACK];
	line_t line = {.buf = line_stack, .len = 0, .cap = sizeof(line_stack), .heap = false};
	line_str(&line, "{\"ts\":\"");
	line_str(&line, ts);
	line_str(&line, "\"");
	line_field(&line, "level", pl_log_level_name(level));
	line_field(&line, "svc", name);
	line_field(&line, "event", event ? event : "");
	line_raw(&line, ",\"msg\":", 7);
	line_json(&line, msg, (size_t)n);
	for (const pl_log_field_t *f = fields; f && f->type != PL_LOG_FIELD_END; f++) {
		if (!f->key)
			continue;
		if (f->type == PL_LOG_FIELD_INT) {
			char num[24];
			line_raw(&line, ",", 1);
			line_json(&line, f->key, strlen(f->key));
			int k = snprintf(num, sizeof(num), ":%lld", (long long)f->num);
			line_raw(&line, num, (size_t)k);
		} else {
			line_field(&line, f->key, f->str);
		}
	}
	if (ctx_trace_id[0])
		line_field(&line, "trace_id", ctx_trace_id);
	if (ctx_delivery_id[0])
		line_field(&line, "delivery_id", ctx_delivery_id);
	line_raw(&line, "}\n", 2);

	int fd = atomic_load(&out_fd);
	pthread_mutex_lock(&lock);
	write_all(fd < 0 ? STDOUT_FILENO : fd, line.buf, line.len);
	pthread_mutex_unlock(&lock);

	if (line.heap)
		pl_free(line.buf);
	if (msg != msg_stack)
		pl_free(msg);
}
