/* http.h — HTTP server glue over libmicrohttpd: routing, bodies, problem+json, health, metrics.
 *
 * The server runs MHD's internal thread pool with epoll. Routes are matched by method and a
 * pattern whose segments may be "{name}" (one path segment). Every request gets /healthz,
 * /readyz and /metrics for free, an X-Request-Id (echoed or generated), 404 for unknown paths and
 * 405 with Allow for a known path with the wrong method. Bodies are buffered up to max_body
 * (413 past it); a body with a non-JSON Content-Type on a route that wants JSON gets 415.
 *
 * Asynchronous answers: a handler may call pl_http_suspend() and return; any thread later calls
 * pl_http_respond() (or pl_http_problem()) on the same request, which resumes the connection.
 * No server thread is blocked while the request waits.
 *
 * Streaming answers (e.g. text/event-stream): pl_http_stream_start() gives the request a 200
 * response whose body is written later, from any thread, with pl_http_stream_write(), until
 * pl_http_stream_close(). See the stream section below.
 *
 * Ownership: pl_http_req_t is owned by the server; it stays valid until a response was given and
 * the connection finished with it. Handlers must respond exactly once, synchronously or after
 * suspending. Thread rules: handlers run on MHD pool threads; pl_http_respond may be called from
 * any thread. */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"

typedef struct pl_http_server pl_http_server_t;
typedef struct pl_http_req pl_http_req_t;

typedef void (*pl_http_handler_fn)(pl_http_req_t *req, void *arg);

/* Readiness: return true when ready; else write the reason into reason. */
typedef bool (*pl_http_ready_fn)(void *arg, char *reason, size_t reason_size);

typedef enum pl_http_body { PL_HTTP_BODY_NONE = 0, PL_HTTP_BODY_JSON } pl_http_body_t;

typedef struct pl_http_route {
	const char *method;  /* "GET", "POST", ... */
	const char *pattern; /* "/api/deliveryrequests/{deliveryId}" */
	pl_http_handler_fn handler;
	void *arg;
	pl_http_body_t body; /* PL_HTTP_BODY_JSON: Content-Type must be JSON when a body is sent */
	const char *name;    /* metrics label, defaults to pattern */
} pl_http_route_t;

typedef struct pl_http_opts {
	const char *svc;  /* metrics prefix: dronepipe_<svc>_http_... */
	const char *addr; /* listen address, e.g. "127.0.0.1" or "0.0.0.0" */
	uint16_t port;    /* 0 = pick a free port (tests); see pl_http_port */
	unsigned threads; /* pool size */
	size_t max_body;
	const char *tls_cert_file; /* both set = HTTPS */
	const char *tls_key_file;
	pl_http_ready_fn ready;
	void *ready_arg;
	pl_metrics_t *metrics;        /* rendered at /metrics; NULL = pl_metrics_default() */
	unsigned connection_limit;    /* 0 = default 10000 */
	unsigned max_streams;         /* concurrent streaming responses; 0 = default 1000 */
	size_t stream_buffer;         /* bytes a stream may hold unsent; 0 = default 64 KiB */
	unsigned stream_heartbeat_ms; /* idle time before a stream's heartbeat; 0 = 15000 */
	/* Per client address (IPv4 or IPv6 address, any port): connections past max_conn_per_ip
	 * are closed at accept, without an answer; a stream past max_streams_per_ip is refused
	 * (pl_http_stream_start, 429). Behind a proxy every client has the proxy's address. */
	unsigned max_conn_per_ip;    /* 0 = default 1024 */
	unsigned max_streams_per_ip; /* 0 = default 32 */
	/* Deadline of a request: from the accept of its connection (for a later request on a
	 * kept-alive connection: from its request line) until its response was sent. Past it
	 * the connection is shut down, whatever it was doing (a client sending its request
	 * slowly, a client reading the answer slowly). A kept-alive connection is also shut
	 * down when it stays idle that long after its last request. A streaming response is
	 * exempt once its headers were queued. Checked about once a second. 0 = 10000. */
	unsigned request_timeout_ms;
} pl_http_opts_t;

/* Starts listening. routes (count entries) are copied. NULL + errstr on failure. */
pl_http_server_t *pl_http_server_start(const pl_http_opts_t *opts, const pl_http_route_t *routes,
                                       size_t count, char *errstr, size_t errstr_size);
/* Copies a service's static route table (count entries) into out (room for max); returns how many
 * were copied. For the routes() callbacks of pl_service_def_t. */
size_t pl_http_routes_copy(pl_http_route_t *out, size_t max, const pl_http_route_t *routes,
                           size_t count);

/* Stops accepting new connections (the listening socket is closed, so a new client is refused
 * at once); connections already open are still served. For a drain before
 * pl_http_server_stop. Idempotent. */
void pl_http_server_quiesce(pl_http_server_t *server);
/* Requests received and not yet completed (headers read, response not yet fully sent), for a
 * drain: 0 means no handler runs and no answer is owed. Thread-safe. */
unsigned pl_http_requests_open(pl_http_server_t *server);

/* Stops accepting, finishes or cancels connections, frees everything. NULL is a no-op. */
void pl_http_server_stop(pl_http_server_t *server);
uint16_t pl_http_port(const pl_http_server_t *server);

/* Request accessors (valid while the request is). */
const char *pl_http_method(const pl_http_req_t *req);
const char *pl_http_path(const pl_http_req_t *req);
const char *pl_http_param(const pl_http_req_t *req, const char *name);  /* {name} in pattern */
const char *pl_http_query(const pl_http_req_t *req, const char *name);  /* NULL when absent */
const char *pl_http_header(const pl_http_req_t *req, const char *name); /* case-insensitive */
const char *pl_http_body(const pl_http_req_t *req, size_t *len); /* NUL-terminated; may be "" */
const char *pl_http_request_id(const pl_http_req_t *req);

/* Adds a response header (copied) for the response about to be given. The value is made safe
 * with pl_text_clean (no control characters, valid UTF-8, at most PL_HTTP_DETAIL_MAX bytes). */
void pl_http_add_header(pl_http_req_t *req, const char *name, const char *value);
/* Responds; body is copied. Safe from any thread; resumes a suspended request. */
void pl_http_respond(pl_http_req_t *req, unsigned status, const char *content_type,
                     const char *body, size_t len);
/* Longest problem detail or header value given to a client, in bytes; longer text is cut
 * between two characters and ends with "...". */
#define PL_HTTP_DETAIL_MAX 1024

/* application/problem+json: {"type","title","status","detail","errors":[...]} .
 * errors_json is a JSON array text (may be NULL for none; other text is replaced by []).
 * detail may hold any bytes (request text): it is passed through pl_text_clean, so the answer
 * is always built, and always JSON. */
void pl_http_problem(pl_http_req_t *req, unsigned status, const char *detail,
                     const char *errors_json);
/* The problem+json text pl_http_problem answers, into *out (caller frees with pl_free); returns
 * its length. Never fails. */
size_t pl_http_problem_text(char **out, unsigned status, const char *detail,
                            const char *errors_json);
/* Marks the request as answered later (from any thread) with pl_http_respond. */
void pl_http_suspend(pl_http_req_t *req);

/* ---- streaming responses ----------------------------------------------------------------------
 *
 * pl_http_stream_start answers req with 200, content_type, "Cache-Control: no-cache" and a body
 * of unknown length (chunked) that is produced by pl_http_stream_write calls. It may be called
 * instead of pl_http_respond: from the handler, or from any thread after pl_http_suspend.
 * heartbeat (copied, may be NULL) is written whenever the stream was idle for
 * stream_heartbeat_ms (e.g. ": ping\n\n" for Server-Sent Events): it keeps proxies from
 * timing out and is how a vanished client is noticed: the first write after the client left
 * usually still succeeds (the kernel accepts it), the next one fails and the connection ends,
 * so a dead stream is released within two heartbeat intervals.
 * Returns NULL when the stream is refused: the request is then NOT answered and the caller
 * answers it with pl_http_stream_refusal(req): 429 when this client address already has
 * max_streams_per_ip streams open, 503 when the server has max_streams open or is stopping.
 *
 * While the stream has nothing to send, its connection is suspended in MHD: no server thread
 * is busy and no timeout runs. Each stream holds at most stream_buffer unsent bytes; a write
 * that does not fit ends the stream (a client that reads too slowly is dropped and may
 * reconnect) and returns PL_ERR_QUEUE_FULL.
 *
 * Ownership: the returned handle is the caller's until pl_http_stream_close; the connection
 * holds its own reference, so the handle stays valid after the client went away (writes then
 * return PL_ERR_IO). Thread rules: every pl_http_stream_* call is thread-safe. */
typedef struct pl_http_stream pl_http_stream_t;

pl_http_stream_t *pl_http_stream_start(pl_http_req_t *req, const char *content_type,
                                       const char *heartbeat);
/* After pl_http_stream_start returned NULL for req: the status to answer (429 or 503). */
unsigned pl_http_stream_refusal(const pl_http_req_t *req);
/* Queues len bytes (copied). PL_OK; PL_ERR_IO when the client is gone or the stream ended;
 * PL_ERR_QUEUE_FULL when the buffer would overflow (the stream is ended). */
pl_err_t pl_http_stream_write(pl_http_stream_t *stream, const void *data, size_t len);
/* True while the client is connected and the stream was not ended. */
bool pl_http_stream_alive(pl_http_stream_t *stream);
/* Ends the stream after the queued bytes were sent and releases the caller's handle (which must
 * not be used afterwards). NULL is a no-op. */
void pl_http_stream_close(pl_http_stream_t *stream);
/* Streams currently open on the server (for metrics and tests). */
unsigned pl_http_stream_count(pl_http_server_t *server);

/* Matches path against a route pattern whose "{name}" segments take one non-empty path segment.
 * On a match returns true and, when names is not NULL, fills names/values (at most max, copies
 * the caller frees with pl_free) and *count; on no match nothing is left allocated. Pure. */
bool pl_http_route_match(const char *pattern, const char *path, char **names, char **values,
                         size_t max, size_t *count);

/* The answer to a request that no route takes: 405 when allow (the methods the path has, e.g.
 * "GET, POST") is not empty, else 404, as problem+json quoting the method and path (any bytes)
 * into *out (pl_free; *len its length). Returns the status. Never fails. */
unsigned pl_http_miss_text(const char *method, const char *path, const char *allow, char **out,
                           size_t *len);

/* Standard reason phrase for a status ("Not Found"). */
const char *pl_http_reason(unsigned status);

#endif
