/* http_int.h — private to http.c and http_stream.c: the request, stream and server structs
 * and the functions one file calls in the other. Not for services. */
#ifndef PL_HTTP_INT_H
#define PL_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "http.h"

#define MAX_PARAMS        4
#define MAX_EXTRA_HEADERS 8

enum req_state { REQ_NEW, REQ_SUSPEND_WANTED, REQ_SUSPENDED, REQ_ANSWERED };

/* since_ms of a connection no deadline applies to: its stream's headers were queued (until
 * the stream's request completes), or the sweep already shut it down (for good). */
#define PL_HTTP_NO_DEADLINE (INT64_MAX - 1)
#define PL_HTTP_CUT         INT64_MAX

/* One TCP connection, from MHD's accept notification to its close notification (MHD's socket
 * context): what the request deadline needs. Invariant: in the server's conns list (conns_lock)
 * exactly while MHD holds the socket open, so fd is valid whenever the list is locked. */
typedef struct pl_http_conn {
	int fd;
	atomic_int_least64_t since_ms; /* CLOCK_MONOTONIC start of the running deadline */
	bool reused; /* a request completed on it: the next one restarts the clock */
	struct pl_http_conn *prev, *next;
} pl_http_conn_t;

struct pl_http_req {
	pl_http_server_t *server;
	struct MHD_Connection *conn;
	const pl_http_route_t *route;
	char *method, *path;
	char *param_names[MAX_PARAMS], *param_values[MAX_PARAMS];
	size_t nparams;
	char *body;
	size_t body_len, body_cap;
	char request_id[130];
	struct timespec started;
	pthread_mutex_t lock;
	enum req_state state;
	bool queued;
	/* the response, once given */
	unsigned status;
	char *resp_body;
	size_t resp_len;
	char *resp_type;
	char *hdr_names[MAX_EXTRA_HEADERS], *hdr_values[MAX_EXTRA_HEADERS];
	size_t nhdrs;
	pl_http_stream_t *stream; /* set by pl_http_stream_start: the response is that stream */
	bool stream_owned_by_mhd; /* the stream's MHD response was created */
	unsigned stream_refusal;  /* 429 / 503 when pl_http_stream_start refused */
	pl_http_conn_t *hconn;    /* its connection (NULL only if MHD gave no socket context) */
};

/* Invariants: off <= len <= cap; len - off <= max unsent bytes; refs counts the caller's handle
 * (until pl_http_stream_close) and the MHD side (until the response's free callback). */
struct pl_http_stream {
	pthread_mutex_t lock;
	unsigned refs;
	struct MHD_Connection *conn; /* NULL once MHD is done with the response */
	char *buf;
	size_t off, len, cap, max;
	char *heartbeat; /* NULL = none */
	bool suspended;  /* the reader suspended the connection; the next wake resumes it */
	bool ended;      /* no more writes: send what is queued, then end the body */
	bool gone;       /* MHD is done with the response (client gone or body finished) */
	struct timespec last_write;    /* CLOCK_MONOTONIC */
	pl_http_stream_t *prev, *next; /* in the server's list (streams_lock) while MHD holds it */
	pl_http_server_t *server;      /* NULL once unlinked */
	unsigned char client[16];      /* client address bytes (IPv4: 4, IPv6: 16), for the cap */
	unsigned client_len;
};

struct pl_http_server {
	struct MHD_Daemon *daemon;
	pl_http_opts_t opts;
	pl_http_route_t *routes;
	size_t nroutes;
	uint16_t port;
	char *tls_cert, *tls_key;
	pl_metric_family_t *m_requests, *m_latency, *m_inflight, *m_streams, *m_refused;
	pl_metric_t *inflight, *streams_gauge;
	pl_metric_t *refused_conn, *refused_streams, *refused_deadline, *refused_body;
	atomic_uint requests_open; /* pl_http_requests_open */
	/* connections, for the request deadline (swept by the heartbeat thread) */
	pthread_mutex_t conns_lock;
	pl_http_conn_t *conns;
	int64_t last_sweep_ms;                  /* heartbeat thread only */
	atomic_int_least64_t last_limit_log_ms; /* rate of the "connection limit" log line */
	bool quiesced;
	/* streams: list, count, heartbeat thread */
	pthread_mutex_t streams_lock;
	pthread_cond_t streams_cond; /* signalled when a stream leaves or on stop */
	pl_http_stream_t *streams;
	unsigned nstreams;
	bool stopping, have_heartbeat_thread;
	pthread_t heartbeat_thread;
};

/* http_stream.c: the content reader and free callback of a stream response, the heartbeat
 * thread, and ending every stream when the server stops. */
ssize_t pl_http__stream_reader(void *cls, uint64_t pos, char *out, size_t max);
void pl_http__stream_mhd_done(void *cls);
void *pl_http__heartbeat_main(void *arg);
void pl_http__streams_shutdown(pl_http_server_t *s);
/* http.c: shuts down every connection past its request deadline (heartbeat thread). */
void pl_http__deadline_sweep(pl_http_server_t *s);

#endif
