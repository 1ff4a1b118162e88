/* http_stream.c — streaming responses of the HTTP glue (see http.h, pl_http_stream_*).
 *
 * Streams: a pl_http_stream_t is shared by the caller (its handle) and the MHD response that
 * reads from it (a content-reader callback); it is freed when both let go (refs). The reader
 * copies queued bytes out; with nothing queued it suspends the connection (under the stream's
 * lock) and returns 0, and the next write or end resumes it (under the same lock), so a wake-up
 * is never lost and no thread spins. A suspended connection is never freed by MHD, so conn is
 * valid whenever `suspended` is set. The response's free callback (MHD is done with it) unlinks
 * the stream from the server's list and drops MHD's reference. A heartbeat thread writes each
 * idle stream's heartbeat; writing is what reveals a client that went away. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "log.h"
#include "mem.h"

/* ---- streams ------------------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stream_unref(pl_http_stream_t *st)
{
	pthread_mutex_lock(&st->lock);
	unsigned left = --st->refs;
	pthread_mutex_unlock(&st->lock);
	if (left)
		return;
	pthread_mutex_destroy(&st->lock);
	pl_free(st->buf);
	pl_free(st->heartbeat);
	pl_free(st);
}

/* Under st->lock: let MHD call the reader again. */
static void stream_wake_locked(pl_http_stream_t *st)
{
	if (st->suspended) {
		st->suspended = false;
		MHD_resume_connection(st->conn);
	}
}

static void stream_unlink(pl_http_stream_t *st)
{
	pl_http_server_t *s = st->server;
	if (!s)
		return;
	pthread_mutex_lock(&s->streams_lock);
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	st->server = NULL;
	s->nstreams--;
	pl_metric_add(s->streams_gauge, -1);
	pthread_cond_broadcast(&s->streams_cond);
	pthread_mutex_unlock(&s->streams_lock);
}

/* MHD's free callback of a stream response: MHD will not call the reader again. */
void pl_http__stream_mhd_done(void *cls)
{
	pl_http_stream_t *st = cls;
	stream_unlink(st);
	pthread_mutex_lock(&st->lock);
	st->gone = true;
	st->suspended = false;
	st->conn = NULL;
	pthread_mutex_unlock(&st->lock);
	stream_unref(st);
}

ssize_t pl_http__stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	pl_http_stream_t *st = cls;
	pthread_mutex_lock(&st->lock);
	size_t queued = st->len - st->off;
	if (queued) {
		size_t n = queued < max ? queued : max;
		memcpy(out, st->buf + st->off, n);
		st->off += n;
		if (st->off == st->len)
			st->off = st->len = 0;
		pthread_mutex_unlock(&st->lock);
		return (ssize_t)n;
	}
	if (st->ended) {
		pthread_mutex_unlock(&st->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	/* Nothing to send: park the connection until the next write (returning 0 without
	 * suspending would make MHD call us again at once). */
	st->suspended = true;
	MHD_suspend_connection(st->conn);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* The client address bytes of conn (the key of the per-address stream cap). */
static void client_key(struct MHD_Connection *conn, pl_http_stream_t *st)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET) {
		memcpy(st->client, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		st->client_len = 4;
	} else if (sa && sa->sa_family == AF_INET6) {
		memcpy(st->client, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		st->client_len = 16;
	}
}

/* Under streams_lock: streams open for st's client address. */
static unsigned client_streams_locked(pl_http_server_t *s, const pl_http_stream_t *st)
{
	unsigned n = 0;
	for (const pl_http_stream_t *o = s->streams; o; o = o->next)
		n += o->client_len == st->client_len &&
		     memcmp(o->client, st->client, st->client_len) == 0;
	return n;
}

pl_http_stream_t *pl_http_stream_start(pl_http_req_t *req, const char *content_type,
                                       const char *heartbeat)
{
	pl_http_server_t *s = req->server;
	pl_http_stream_t *st = pl_calloc(1, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	st->refs = 2;
	st->conn = req->conn;
	st->max = s->opts.stream_buffer;
	st->heartbeat = heartbeat && *heartbeat ? pl_strdup(heartbeat) : NULL;
	clock_gettime(CLOCK_MONOTONIC, &st->last_write);
	client_key(req->conn, st);

	pthread_mutex_lock(&s->streams_lock);
	unsigned refusal = 0;
	if (s->stopping || s->nstreams >= s->opts.max_streams)
		refusal = 503;
	else if (st->client_len && client_streams_locked(s, st) >= s->opts.max_streams_per_ip)
		refusal = 429;
	if (refusal) {
		pthread_mutex_unlock(&s->streams_lock);
		if (refusal == 429)
			pl_metric_inc(s->refused_streams);
		req->stream_refusal = refusal;
		st->refs = 1;
		stream_unref(st);
		return NULL;
	}
	st->server = s;
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	s->nstreams++;
	pl_metric_add(s->streams_gauge, 1);
	pthread_mutex_unlock(&s->streams_lock);

	pthread_mutex_lock(&req->lock);
	if (req->resp_type) {
		pthread_mutex_unlock(&req->lock);
		pl_log(PL_LOG_ERROR, "http_double_response",
		       PL_LOG_FIELDS(PL_LS("path", req->path)), "stream on an answered request");
		stream_unlink(st);
		st->refs = 1;
		stream_unref(st);
		return NULL;
	}
	req->status = 200;
	req->resp_type = pl_strdup(content_type ? content_type : "application/octet-stream");
	req->stream = st;
	enum req_state prev = req->state;
	req->state = REQ_ANSWERED;
	if (prev == REQ_SUSPENDED)
		MHD_resume_connection(req->conn);
	pthread_mutex_unlock(&req->lock);
	return st;
}

pl_err_t pl_http_stream_write(pl_http_stream_t *st, const void *data, size_t len)
{
	pthread_mutex_lock(&st->lock);
	pl_err_t err = PL_OK;
	if (st->gone || st->ended) {
		err = PL_ERR_IO;
	} else if (st->len - st->off + len > st->max) {
		st->ended = true; /* a reader this slow is dropped; it may reconnect */
		stream_wake_locked(st);
		err = PL_ERR_QUEUE_FULL;
	} else {
		if (st->off && st->len + len > st->cap) { /* compact before growing */
			memmove(st->buf, st->buf + st->off, st->len - st->off);
			st->len -= st->off;
			st->off = 0;
		}
		if (st->len + len > st->cap) {
			st->cap = st->len + len > 2 * st->cap ? st->len + len : 2 * st->cap;
			st->buf = pl_realloc(st->buf, st->cap);
		}
		memcpy(st->buf + st->len, data, len);
		st->len += len;
		clock_gettime(CLOCK_MONOTONIC, &st->last_write);
		stream_wake_locked(st);
	}
	pthread_mutex_unlock(&st->lock);
	return err;
}

unsigned pl_http_stream_refusal(const pl_http_req_t *req)
{
	return req->stream_refusal ? req->stream_refusal : 503;
}

bool pl_http_stream_alive(pl_http_stream_t *st)
{
	pthread_mutex_lock(&st->lock);
	bool alive = !st->gone && !st->ended;
	pthread_mutex_unlock(&st->lock);
	return alive;
}

/* Ends the stream without releasing a reference. */
static void stream_end(pl_http_stream_t *st)
{
	pthread_mutex_lock(&st->lock);
	st->ended = true;
	if (!st->gone)
		stream_wake_locked(st);
	pthread_mutex_unlock(&st->lock);
}

void pl_http_stream_close(pl_http_stream_t *st)
{
	if (!st)
		return;
	stream_end(st);
	stream_unref(st);
}

unsigned pl_http_stream_count(pl_http_server_t *s)
{
	pthread_mutex_lock(&s->streams_lock);
	unsigned n = s->nstreams;
	pthread_mutex_unlock(&s->streams_lock);
	return n;
}

/* Writes the heartbeat of every stream idle for stream_heartbeat_ms, about once a second, and
 * sweeps the connections past their request deadline (http.c). The
 * streams are referenced under the list lock and written outside it, so no MHD call is made
 * while holding the list lock (MHD's own callbacks take it). */
void *pl_http__heartbeat_main(void *arg)
{
	pl_http_server_t *s = arg;
	pthread_mutex_lock(&s->streams_lock);
	while (!s->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->streams_cond, &s->streams_lock, &until);
		if (s->stopping)
			break;
		int64_t now = mono_ms();
		size_t n = 0, cap = s->nstreams;
		pl_http_stream_t **due = cap ? pl_calloc(cap, sizeof(*due)) : NULL;
		for (pl_http_stream_t *st = s->streams; st && n < cap; st = st->next) {
			pthread_mutex_lock(&st->lock);
			int64_t last = (int64_t)st->last_write.tv_sec * 1000 +
			               st->last_write.tv_nsec / 1000000;
			if (st->heartbeat && !st->ended && !st->gone &&
			    now - last >= (int64_t)s->opts.stream_heartbeat_ms) {
				st->refs++;
				due[n++] = st;
			}
			pthread_mutex_unlock(&st->lock);
		}
		pthread_mutex_unlock(&s->streams_lock);
		for (size_t i = 0; i < n; i++) {
			pl_http_stream_write(due[i], due[i]->heartbeat, strlen(due[i]->heartbeat));
			stream_unref(due[i]);
		}
		pl_free(due);
		pl_http__deadline_sweep(s);
		pthread_mutex_lock(&s->streams_lock);
	}
	pthread_mutex_unlock(&s->streams_lock);
	return NULL;
}

/* Ends every stream and waits (bounded) until MHD let go of them, so that no connection is
 * left suspended when the daemon stops. */
void pl_http__streams_shutdown(pl_http_server_t *s)
{
	pthread_mutex_lock(&s->streams_lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->streams_cond);
	size_t n = 0, cap = s->nstreams;
	pl_http_stream_t **open = cap ? pl_calloc(cap, sizeof(*open)) : NULL;
	for (pl_http_stream_t *st = s->streams; st && n < cap; st = st->next) {
		pthread_mutex_lock(&st->lock);
		st->refs++;
		pthread_mutex_unlock(&st->lock);
		open[n++] = st;
	}
	pthread_mutex_unlock(&s->streams_lock);
	for (size_t i = 0; i < n; i++) { /* outside the list lock: resuming is an MHD call */
		stream_end(open[i]);
		stream_unref(open[i]);
	}
	pl_free(open);
	pthread_mutex_lock(&s->streams_lock);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	while (s->nstreams > 0 &&
	       pthread_cond_timedwait(&s->streams_cond, &s->streams_lock, &until) == 0)
		;
	pthread_mutex_unlock(&s->streams_lock);
	if (s->have_heartbeat_thread) {
		pthread_join(s->heartbeat_thread, NULL);
		s->have_heartbeat_thread = false;
	}
}
