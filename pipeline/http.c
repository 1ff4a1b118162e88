/* http.c — libmicrohttpd glue: routing, body buffering, problem+json, health/readiness/metrics,
 * suspend/resume for answers produced on another thread, streaming responses (see http.h).
 *
 * Owns: the MHD daemon and every pl_http_req_t (created on a request's first callback, freed in
 * MHD's request-completed callback). A request's response is built once, stored in the request
 * under its lock, and queued by the access handler on the MHD thread: directly after the handler
 * returned, or on the callback that follows MHD_resume_connection.
 * Request states: NEW -> (handler) -> ANSWERED | SUSPEND_WANTED -> SUSPENDED -> ANSWERED.
 * Invariant: MHD_suspend_connection is called only by the access handler and only while no
 * response is stored; MHD_resume_connection only by pl_http_respond for a SUSPENDED request.
 *
 * Bounded resources (see http.h): a connection cap per client address (MHD's own), a stream
 * cap per address (http_stream.c), and a deadline per request: every connection is listed from
 * MHD's accept notification to its close notification with the start of its running deadline;
 * the heartbeat thread sweeps the list about once a second and shuts down the socket of one past
 * it (MHD then closes it as a connection the client dropped). The clock starts at the accept,
 * restarts when a request completes (the idle time of a kept-alive connection) and again at the
 * next request line; a stream's connection is exempt once its headers are queued. A body announced
 * larger than max_body is answered 413 before it is read (MHD then closes the connection); a body
 * without a length that grows past it closes the connection.
 *
 * Streams live in http_stream.c (structs shared through http_int.h). */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "text.h"
#include "http_int.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"

/* Memory of one connection: request line, headers and the read and write buffers. MHD zeroes
 * all of it after every request of a keep-alive connection; at the 32 KB default that memset
 * was 6% of the ingress's CPU. A request needs far less (a body is copied out as it arrives,
 * in pieces of what fits); headers larger than this get 431. */
#define CONNECTION_MEMORY 8192

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- routing ------------------------------------------------------------------------------ */

/* Matches path against pattern; on success fills req's params (copies) when req is given. */
static bool route_match(const char *pattern, const char *path, pl_http_req_t *req)
{
	if (!req)
		return pl_http_route_match(pattern, path, NULL, NULL, MAX_PARAMS, NULL);
	size_t np = 0;
	if (!pl_http_route_match(pattern, path, req->param_names, req->param_values, MAX_PARAMS,
	                         &np))
		return false;
	req->nparams = np;
	return true;
}

/* ---- responses ---------------------------------------------------------------------------- */

void pl_http_add_header(pl_http_req_t *req, const char *name, const char *value)
{
	pthread_mutex_lock(&req->lock);
	if (req->nhdrs < MAX_EXTRA_HEADERS) {
		/* a value may carry request text (a Location with an id): no CR/LF or other
		 * control character can split the response, no byte that is not UTF-8 */
		char safe[PL_HTTP_DETAIL_MAX];
		pl_text_clean(safe, sizeof(safe), value ? value : "", value ? strlen(value) : 0);
		req->hdr_names[req->nhdrs] = pl_strdup(name);
		req->hdr_values[req->nhdrs] = pl_strdup(safe);
		req->nhdrs++;
	}
	pthread_mutex_unlock(&req->lock);
}

void pl_http_respond(pl_http_req_t *req, unsigned status, const char *content_type,
                     const char *body, size_t len)
{
	pthread_mutex_lock(&req->lock);
	if (req->resp_type) { /* answered twice: a programming error, keep the first */
		pthread_mutex_unlock(&req->lock);
		pl_log(PL_LOG_ERROR, "http_double_response",
		       PL_LOG_FIELDS(PL_LS("path", req->path)), "second response ignored");
		return;
	}
	req->status = status;
	req->resp_type = pl_strdup(content_type ? content_type : "text/plain");
	req->resp_body = pl_strndup(body ? body : "", body ? len : 0);
	req->resp_len = body ? len : 0;
	enum req_state prev = req->state;
	req->state = REQ_ANSWERED;
	if (prev == REQ_SUSPENDED)
		MHD_resume_connection(req->conn);
	pthread_mutex_unlock(&req->lock);
}

void pl_http_problem(pl_http_req_t *req, unsigned status, const char *detail,
                     const char *errors_json)
{
	char *text;
	size_t len = pl_http_problem_text(&text, status, detail, errors_json);
	pl_http_respond(req, status, "application/problem+json", text, len);
	pl_free(text);
}

void pl_http_suspend(pl_http_req_t *req)
{
	pthread_mutex_lock(&req->lock);
	if (req->state == REQ_NEW)
		req->state = REQ_SUSPEND_WANTED;
	pthread_mutex_unlock(&req->lock);
}

/* On the MHD thread: queue the stored response. */
static enum MHD_Result queue_stored(pl_http_req_t *req)
{
	pl_http_server_t *s = req->server;
	struct MHD_Response *resp;
	if (req->stream) {
		req->stream_owned_by_mhd =
		    true; /* the free callback now releases MHD's reference */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
		                                         pl_http__stream_reader, req->stream,
		                                         pl_http__stream_mhd_done);
		if (!resp) {
			pl_http__stream_mhd_done(req->stream);
			return MHD_NO;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
		if (req->hconn) /* a stream lives as long as it is read: no request deadline */
			atomic_store(&req->hconn->since_ms, PL_HTTP_NO_DEADLINE);
	} else {
		resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
		                                       MHD_RESPMEM_MUST_COPY);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->resp_type);
	MHD_add_response_header(resp, "X-Request-Id", req->request_id);
	for (size_t i = 0; i < req->nhdrs; i++)
		MHD_add_response_header(resp, req->hdr_names[i], req->hdr_values[i]);
	enum MHD_Result r = MHD_queue_response(req->conn, req->status, resp);
	MHD_destroy_response(resp);
	req->queued = true;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	const char *route =
	    req->route ? (req->route->name ? req->route->name : req->route->pattern) : "unmatched";
	char status[8];
	snprintf(status, sizeof(status), "%u", req->status);
	const char *l2[] = {route, status};
	pl_metric_inc(pl_metric_get(s->m_requests, l2));
	const char *l1[] = {route};
	pl_metric_observe(pl_metric_get(s->m_latency, l1),
	                  (double)(now.tv_sec - req->started.tv_sec) +
	                      (double)(now.tv_nsec - req->started.tv_nsec) / 1e9);
	return r;
}

/* ---- built-in routes ---------------------------------------------------------------------- */

static void on_healthz(pl_http_req_t *req, void *arg)
{
	(void)arg;
	static const char body[] = "{\"status\":\"UP\"}";
	pl_http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void on_readyz(pl_http_req_t *req, void *arg)
{
	pl_http_server_t *s = arg;
	char reason[256] = "not ready";
	if (!s->opts.ready || s->opts.ready(s->opts.ready_arg, reason, sizeof(reason))) {
		static const char body[] = "{\"status\":\"READY\"}";
		pl_http_respond(req, 200, "application/json", body, sizeof(body) - 1);
		return;
	}
	pl_http_problem(req, 503, reason, NULL);
}

static void on_metrics(pl_http_req_t *req, void *arg)
{
	pl_http_server_t *s = arg;
	size_t len = 0;
	char *text = pl_metrics_render(s->opts.metrics, &len);
	pl_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	pl_free(text);
}

/* ---- request accessors -------------------------------------------------------------------- */

const char *pl_http_method(const pl_http_req_t *req)
{
	return req->method;
}
const char *pl_http_path(const pl_http_req_t *req)
{
	return req->path;
}
const char *pl_http_request_id(const pl_http_req_t *req)
{
	return req->request_id;
}
const char *pl_http_param(const pl_http_req_t *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++)
		if (strcmp(req->param_names[i], name) == 0)
			return req->param_values[i];
	return NULL;
}
const char *pl_http_query(const pl_http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}
const char *pl_http_header(const pl_http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
const char *pl_http_body(const pl_http_req_t *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body ? req->body : "";
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

static bool json_content_type(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	/* application/<anything>+json */
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	       strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static bool sane_request_id(const char *id)
{
	size_t n = 0;
	for (; id[n]; n++)
		if (id[n] < 0x21 || id[n] > 0x7e || n >= 128)
			return false;
	return n > 0;
}

static pl_http_req_t *req_new(pl_http_server_t *s, struct MHD_Connection *conn, const char *url,
                              const char *method)
{
	pl_http_req_t *req = pl_calloc(1, sizeof(*req));
	req->server = s;
	req->conn = conn;
	req->method = pl_strdup(method);
	req->path = pl_strdup(url);
	pthread_mutex_init(&req->lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->hconn = ci ? ci->socket_context : NULL;
	atomic_fetch_add(&s->requests_open, 1);
	const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	if (rid && sane_request_id(rid))
		snprintf(req->request_id, sizeof(req->request_id), "%s", rid);
	else
		pl_uuid_v4(req->request_id);
	pl_metric_add(s->inflight, 1);
	return req;
}

static void req_free(pl_http_req_t *req)
{
	if (req->stream && !req->stream_owned_by_mhd)
		pl_http__stream_mhd_done(req->stream); /* the response was never created */
	for (size_t i = 0; i < req->nparams; i++) {
		pl_free(req->param_names[i]);
		pl_free(req->param_values[i]);
	}
	for (size_t i = 0; i < req->nhdrs; i++) {
		pl_free(req->hdr_names[i]);
		pl_free(req->hdr_values[i]);
	}
	pl_metric_add(req->server->inflight, -1);
	atomic_fetch_sub(&req->server->requests_open, 1);
	pthread_mutex_destroy(&req->lock);
	pl_free(req->method);
	pl_free(req->path);
	pl_free(req->body);
	pl_free(req->resp_body);
	pl_free(req->resp_type);
	pl_free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	/* The next request on this connection gets a deadline of its own, from now (idle time
	 * counts: an idle kept-alive connection is closed at the deadline too). */
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	pl_http_conn_t *hc = ci ? ci->socket_context : NULL;
	if (hc && atomic_load(&hc->since_ms) != PL_HTTP_CUT) {
		atomic_store(&hc->since_ms, mono_ms());
		hc->reused = true;
	}
	pl_http_req_t *req = *con_cls;
	if (!req)
		return;
	*con_cls = NULL;
	/* A suspended request whose connection died still owes nobody anything: the async side
	 * holds no pointer after pl_http_respond returned, and it must respond before this runs
	 * (MHD never completes a suspended connection). */
	req_free(req);
}

/* Finds the route; on no match answers 404/405 into req and returns false. */
static bool dispatch_lookup(pl_http_req_t *req)
{
	pl_http_server_t *s = req->server;
	char allow[128] = "";
	for (size_t i = 0; i < s->nroutes; i++) {
		const pl_http_route_t *r = &s->routes[i];
		if (!route_match(r->pattern, req->path, NULL))
			continue;
		if (strcmp(r->method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			route_match(r->pattern, req->path, req);
			req->route = r;
			return true;
		}
		if (!strstr(allow, r->method)) {
			size_t n = strlen(allow);
			snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", r->method);
		}
	}
	if (allow[0])
		pl_http_add_header(req, "Allow", allow);
	char *text;
	size_t len;
	unsigned status = pl_http_miss_text(req->method, req->path, allow, &text, &len);
	pl_http_respond(req, status, "application/problem+json", text, len);
	pl_free(text);
	return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	pl_http_server_t *s = cls;
	pl_http_req_t *req = *con_cls;
	if (!req) {
		req = req_new(s, conn, url, method);
		*con_cls = req;
		if (dispatch_lookup(req)) {
			const char *cl = MHD_lookup_connection_value(
			    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl && strtoull(cl, NULL, 10) > s->opts.max_body) {
				/* Answered now, before the body is read: MHD sends it with
				 * "Connection: close" and reads nothing more. */
				char detail[128];
				snprintf(detail, sizeof(detail),
				         "request body exceeds the limit of %zu bytes",
				         s->opts.max_body);
				pl_metric_inc(s->refused_body);
				pl_http_problem(req, 413, detail, NULL);
				return queue_stored(req);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!req->resp_type) {
			size_t need = req->body_len + *upload_data_size;
			if (need > s->opts.max_body) {
				/* A body without a length grew past the limit. MHD cannot answer
				 * in the middle of a body, and reading the rest is what the
				 * limit is there to avoid: close the connection. */
				pl_metric_inc(s->refused_body);
				pl_log(PL_LOG_INFO, "http_body_too_large",
				       PL_LOG_FIELDS(PL_LS("path", req->path)),
				       "closing the connection: a body without Content-Length "
				       "passed %zu bytes",
				       s->opts.max_body);
				return MHD_NO;
			} else {
				if (need + 1 > req->body_cap) {
					req->body_cap = need + 1 > 2 * req->body_cap
					                    ? need + 1
					                    : 2 * req->body_cap;
					req->body = pl_realloc(req->body, req->body_cap);
				}
				memcpy(req->body + req->body_len, upload_data, *upload_data_size);
				req->body_len = need;
				req->body[need] = '\0';
			}
		}
		*upload_data_size = 0; /* discard, keep reading */
		return MHD_YES;
	}
	/* Whole request read. */
	if (req->queued)
		return MHD_YES;
	pthread_mutex_lock(&req->lock);
	enum req_state st = req->state;
	pthread_mutex_unlock(&req->lock);
	if (st == REQ_NEW && !req->resp_type) {
		if (req->route->body == PL_HTTP_BODY_JSON && req->body_len > 0 &&
		    !json_content_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                                   MHD_HTTP_HEADER_CONTENT_TYPE))) {
			pl_http_problem(req, 415, "Content-Type must be application/json", NULL);
		} else {
			req->route->handler(req, req->route->arg);
		}
	}
	pthread_mutex_lock(&req->lock);
	if (req->state == REQ_SUSPEND_WANTED) {
		req->state = REQ_SUSPENDED;
		MHD_suspend_connection(conn);
		pthread_mutex_unlock(&req->lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&req->lock);
	if (!req->resp_type) {
		pl_log(PL_LOG_ERROR, "http_no_response", PL_LOG_FIELDS(PL_LS("path", req->path)),
		       "handler returned without a response");
		pl_http_problem(req, 500, "the handler gave no response", NULL);
	}
	return queue_stored(req);
}

/* ---- connections: the request deadline ---------------------------------------------------- */

/* MHD's accept and close notifications (on the connection's MHD thread). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	pl_http_server_t *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci)
			return;
		pl_http_conn_t *hc = pl_calloc(1, sizeof(*hc));
		hc->fd = ci->connect_fd;
		atomic_init(&hc->since_ms, mono_ms());
		pthread_mutex_lock(&s->conns_lock);
		hc->next = s->conns;
		if (s->conns)
			s->conns->prev = hc;
		s->conns = hc;
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = hc;
		return;
	}
	pl_http_conn_t *hc = *socket_context;
	if (!hc)
		return;
	/* MHD closes the socket after this returns: unlinked first, so a sweep holding the lock
	 * never shuts down a descriptor number that was already reused. */
	pthread_mutex_lock(&s->conns_lock);
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		s->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	pthread_mutex_unlock(&s->conns_lock);
	*socket_context = NULL;
	pl_free(hc);
}

/* MHD's callback once a request line was read: a later request on a kept-alive connection
 * starts its own deadline here (until now the clock measured the idle time since the previous
 * one). The first request's clock runs from the accept, so a slow first line counts. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)uri;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	pl_http_conn_t *hc = ci ? ci->socket_context : NULL;
	if (hc && hc->reused && atomic_load(&hc->since_ms) != PL_HTTP_CUT)
		atomic_store(&hc->since_ms, mono_ms());
	return NULL; /* the request object is made in on_request */
}

void pl_http__deadline_sweep(pl_http_server_t *s)
{
	int64_t now = mono_ms();
	if (now - s->last_sweep_ms < 500)
		return;
	s->last_sweep_ms = now;
	unsigned cut = 0;
	pthread_mutex_lock(&s->conns_lock);
	for (pl_http_conn_t *hc = s->conns; hc; hc = hc->next) {
		int64_t since = atomic_load(&hc->since_ms);
		if (since >= PL_HTTP_NO_DEADLINE ||
		    now - since < (int64_t)s->opts.request_timeout_ms)
			continue;
		/* MHD sees the connection end as if the client had dropped it. A suspended
		 * connection notices when it is resumed (its answer then fails to send). */
		shutdown(hc->fd, SHUT_RDWR);
		atomic_store(&hc->since_ms, PL_HTTP_CUT);
		cut++;
	}
	pthread_mutex_unlock(&s->conns_lock);
	if (cut) {
		pl_metric_add(s->refused_deadline, cut);
		pl_log(PL_LOG_INFO, "http_request_timeout",
		       PL_LOG_FIELDS(PL_LI("connections", cut),
		                     PL_LI("timeout_ms", s->opts.request_timeout_ms)),
		       "closed %u connection(s) whose request was not done within %u ms", cut,
		       s->opts.request_timeout_ms);
	}
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	pl_http_server_t *s = cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (strncmp(buf, "Server reached connection limit", 31) == 0) {
		/* A client over its per-address cap (or the server full): counted, and logged
		 * at most every 10 s, so a flood of refused connections is not a flood of logs. */
		pl_metric_inc(s->refused_conn);
		int64_t now = mono_ms(), last = atomic_load(&s->last_limit_log_ms);
		if (now - last < 10000 ||
		    !atomic_compare_exchange_strong(&s->last_limit_log_ms, &last, now))
			return;
		pl_log(PL_LOG_WARN, "http_connection_limit",
		       PL_LOG_FIELDS(PL_LI("per_ip", s->opts.max_conn_per_ip)),
		       "refusing connections: a client address is at its limit of %u or the server "
		       "is full (dronepipe_*_http_refused_total counts them)",
		       s->opts.max_conn_per_ip);
		return;
	}
	/* A client that went away, or a connection this file closed (deadline, body past the
	 * limit) and logged itself: one line per connection, kept out of the warnings. */
	bool routine = strncmp(buf, "Connection socket is closed when reading", 40) == 0 ||
	               strncmp(buf, "Application reported internal error, closing", 44) == 0;
	pl_log(routine ? PL_LOG_DEBUG : PL_LOG_WARN, "http_log", NULL, "%s", buf);
}

static char *read_file(const char *path, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(errstr, errstr_size, "cannot read %s", path);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			buf = pl_realloc(buf, cap);
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (!buf)
		buf = pl_strdup("");
	buf[len] = '\0';
	return buf;
}

pl_http_server_t *pl_http_server_start(const pl_http_opts_t *opts, const pl_http_route_t *routes,
                                       size_t count, char *errstr, size_t errstr_size)
{
	pl_http_server_t *s = pl_calloc(1, sizeof(*s));
	s->opts = *opts;
	if (!s->opts.metrics)
		s->opts.metrics = pl_metrics_default();
	if (!s->opts.max_body)
		s->opts.max_body = 65536;
	if (!s->opts.threads)
		s->opts.threads = 2;
	s->nroutes = count + 3;
	s->routes = pl_calloc(s->nroutes, sizeof(*s->routes));
	memcpy(s->routes, routes, count * sizeof(*routes));
	s->routes[count] = (pl_http_route_t){"GET", "/healthz", on_healthz, s};
	s->routes[count + 1] = (pl_http_route_t){"GET", "/readyz", on_readyz, s};
	s->routes[count + 2] = (pl_http_route_t){"GET", "/metrics", on_metrics, s};
	char name[160];
	snprintf(name, sizeof(name), "dronepipe_%s_http_requests_total", opts->svc);
	s->m_requests =
	    pl_metrics_family(s->opts.metrics, name, "HTTP requests by route and status",
	                      PL_METRIC_COUNTER, "route,status", NULL, 0);
	snprintf(name, sizeof(name), "dronepipe_%s_http_request_seconds", opts->svc);
	s->m_latency = pl_metrics_family(s->opts.metrics, name, "HTTP request latency",
	                                 PL_METRIC_HISTOGRAM, "route", NULL, 0);
	snprintf(name, sizeof(name), "dronepipe_%s_http_in_flight", opts->svc);
	s->m_inflight = pl_metrics_family(s->opts.metrics, name, "HTTP requests being served",
	                                  PL_METRIC_GAUGE, "", NULL, 0);
	s->inflight = pl_metric_get0(s->m_inflight);
	snprintf(name, sizeof(name), "dronepipe_%s_http_streams", opts->svc);
	s->m_streams = pl_metrics_family(s->opts.metrics, name, "streaming responses open",
	                                 PL_METRIC_GAUGE, "", NULL, 0);
	s->streams_gauge = pl_metric_get0(s->m_streams);
	if (!s->opts.max_streams)
		s->opts.max_streams = 1000;
	if (!s->opts.stream_buffer)
		s->opts.stream_buffer = 65536;
	if (!s->opts.stream_heartbeat_ms)
		s->opts.stream_heartbeat_ms = 15000;
	if (!s->opts.max_conn_per_ip)
		s->opts.max_conn_per_ip = 1024;
	if (!s->opts.max_streams_per_ip)
		s->opts.max_streams_per_ip = 32;
	if (!s->opts.request_timeout_ms)
		s->opts.request_timeout_ms = 10000;
	snprintf(name, sizeof(name), "dronepipe_%s_http_refused_total", opts->svc);
	s->m_refused = pl_metrics_family(
	    s->opts.metrics, name,
	    "connections and requests refused by a limit: connection_limit (per address or "
	    "server full; closed at accept), streams_per_ip (429), request_timeout (closed at "
	    "the deadline), body_too_large (413 or closed)",
	    PL_METRIC_COUNTER, "reason", NULL, 0);
	const char *r1[] = {"connection_limit"}, *r2[] = {"streams_per_ip"},
	           *r3[] = {"request_timeout"}, *r4[] = {"body_too_large"};
	s->refused_conn = pl_metric_get(s->m_refused, r1);
	s->refused_streams = pl_metric_get(s->m_refused, r2);
	s->refused_deadline = pl_metric_get(s->m_refused, r3);
	s->refused_body = pl_metric_get(s->m_refused, r4);
	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_mutex_init(&s->streams_lock, NULL);
	pthread_cond_init(&s->streams_cond, NULL);
	if (pthread_create(&s->heartbeat_thread, NULL, pl_http__heartbeat_main, s) != 0) {
		snprintf(errstr, errstr_size, "cannot start the stream heartbeat thread");
		goto fail;
	}
	s->have_heartbeat_thread = true;

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opts->port)};
	if (inet_pton(AF_INET, opts->addr ? opts->addr : "127.0.0.1", &sa.sin_addr) != 1) {
		snprintf(errstr, errstr_size, "bad listen address %s", opts->addr);
		goto fail;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	bool tls = opts->tls_cert_file && *opts->tls_cert_file && opts->tls_key_file &&
	           *opts->tls_key_file;
	if (tls) {
		s->tls_cert = read_file(opts->tls_cert_file, errstr, errstr_size);
		s->tls_key =
		    s->tls_cert ? read_file(opts->tls_key_file, errstr, errstr_size) : NULL;
		if (!s->tls_key)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
	    {MHD_OPTION_END, 0, NULL},
	};
	s->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)s->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
	    opts->connection_limit ? opts->connection_limit : 10000u, MHD_OPTION_CONNECTION_TIMEOUT,
	    60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->opts.max_conn_per_ip,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[2],
	    MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(errstr, errstr_size, "cannot listen on %s:%u%s",
		         opts->addr ? opts->addr : "127.0.0.1", opts->port,
		         tls ? " (check the TLS certificate and key)" : " (port in use?)");
		goto fail;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : opts->port;
	return s;
fail:
	pl_http_server_stop(s);
	return NULL;
}

size_t pl_http_routes_copy(pl_http_route_t *out, size_t max, const pl_http_route_t *routes,
                           size_t count)
{
	size_t n = count < max ? count : max;
	memcpy(out, routes, n * sizeof(*routes));
	return n;
}

void pl_http_server_stop(pl_http_server_t *s)
{
	if (!s)
		return;
	if (s->m_streams) /* initialised */
		pl_http__streams_shutdown(s);
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	if (s->m_streams) {
		pthread_mutex_destroy(&s->streams_lock);
		pthread_cond_destroy(&s->streams_cond);
		pthread_mutex_destroy(&s->conns_lock);
	}
	pl_free(s->routes);
	pl_free(s->tls_cert);
	pl_free(s->tls_key);
	pl_free(s);
}

void pl_http_server_quiesce(pl_http_server_t *s)
{
	if (!s || !s->daemon || s->quiesced)
		return;
	s->quiesced = true;
	MHD_socket fd = MHD_quiesce_daemon(s->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd); /* closed, not only unwatched: a new client is refused at once */
}

unsigned pl_http_requests_open(pl_http_server_t *s)
{
	return atomic_load(&s->requests_open);
}

uint16_t pl_http_port(const pl_http_server_t *s)
{
	return s->port;
}
