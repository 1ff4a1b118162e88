/* test_http_limits.c — unit tests of the HTTP server's bounds (pipeline/http.c, http_stream.c)
 * through real sockets on loopback: the connection cap per client address (127.0.0.2 is a
 * second address), the request deadline cutting a slow sender (a bounded wait for the server's
 * close), 413 answered to headers alone with the connection closed, a chunked body past the
 * limit closing the connection, the stream cap per address (429 via pl_http_stream_refusal),
 * and quiesce + pl_http_requests_open for a drain. Each server gets its own metrics registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "mem.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connected socket from src (e.g. "127.0.0.2") to the server. */
static int dial(uint16_t port, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, src, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	return fd;
}

static void send_text(int fd, const char *text)
{
	size_t n = strlen(text);
	/* the peer may have closed already: that is what some tests wait for */
	(void)!send(fd, text, n, MSG_NOSIGNAL);
}

/* Reads until the headers are complete, EOF, or wait_ms passed; returns the status (0 when the
 * connection ended or nothing came). head (size cap) receives what was read. */
static int read_status(int fd, int wait_ms, char *head, size_t cap)
{
	size_t len = 0;
	int64_t until = mono_ms() + wait_ms;
	head[0] = '\0';
	while (!strstr(head, "\r\n\r\n") && len + 1 < cap) {
		int left = (int)(until - mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = recv(fd, head + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		head[len] = '\0';
	}
	int status = 0;
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	return status;
}

/* True when the server ends the connection (EOF or reset) within wait_ms; other bytes that
 * arrive meanwhile are skipped. */
static bool closed_within(int fd, int wait_ms)
{
	int64_t until = mono_ms() + wait_ms;
	char buf[4096];
	for (;;) {
		int left = (int)(until - mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

static void on_ok(pl_http_req_t *req, void *arg)
{
	(void)arg;
	pl_http_respond(req, 200, "text/plain", "ok", 2);
}

/* a stream that stays open until the server stops */
static pl_http_stream_t *held_streams[8];
static size_t nheld;
static void on_stream_hold(pl_http_req_t *req, void *arg)
{
	(void)arg;
	pl_http_stream_t *st = pl_http_stream_start(req, "text/event-stream", NULL);
	if (!st) {
		pl_http_respond(req, pl_http_stream_refusal(req), "text/plain", "no", 2);
		return;
	}
	pl_http_stream_write(st, "data: hi\n\n", 10);
	if (nheld < 8)
		held_streams[nheld++] = st;
	else
		pl_http_stream_close(st);
}

static const pl_http_route_t routes[] = {
    {"GET", "/ok", on_ok, NULL},
    {"POST", "/in", on_ok, NULL, PL_HTTP_BODY_JSON},
    {"GET", "/hold", on_stream_hold, NULL},
};

typedef struct fixture {
	pl_metrics_t *metrics;
	pl_http_server_t *server;
	uint16_t port;
} fixture_t;

static fixture_t start(unsigned conn_per_ip, unsigned streams_per_ip, unsigned timeout_ms)
{
	fixture_t f = {.metrics = pl_metrics_new()};
	pl_http_opts_t o = {.svc = "t",
	                    .addr = "127.0.0.1",
	                    .threads = 2,
	                    .max_body = 1024,
	                    .metrics = f.metrics,
	                    .max_conn_per_ip = conn_per_ip,
	                    .max_streams_per_ip = streams_per_ip,
	                    .request_timeout_ms = timeout_ms};
	char err[256];
	f.server =
	    pl_http_server_start(&o, routes, sizeof(routes) / sizeof(routes[0]), err, sizeof(err));
	assert_non_null(f.server);
	f.port = pl_http_port(f.server);
	return f;
}

static void stop(fixture_t *f)
{
	for (size_t i = 0; i < nheld; i++)
		pl_http_stream_close(held_streams[i]);
	nheld = 0;
	pl_http_server_stop(f->server);
	pl_metrics_destroy(f->metrics);
}

static int get_ok(int fd)
{
	char head[2048];
	send_text(fd, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
	return read_status(fd, 3000, head, sizeof(head));
}

static void connection_cap_per_address(void **state)
{
	(void)state;
	fixture_t f = start(2, 0, 60000);
	int a = dial(f.port, "127.0.0.1"), b = dial(f.port, "127.0.0.1");
	assert_int_equal(get_ok(a), 200);
	assert_int_equal(get_ok(b), 200);
	int c = dial(f.port, "127.0.0.1"); /* the kernel accepts; the server closes it */
	assert_int_equal(get_ok(c), 0);
	assert_true(closed_within(c, 3000));
	int other = dial(f.port, "127.0.0.2"); /* another address is not affected */
	assert_int_equal(get_ok(other), 200);
	assert_int_equal(get_ok(a), 200); /* nor are the two held ones */
	close(b);
	int64_t until = mono_ms() + 3000; /* the freed slot, once the server saw the close */
	int status = 0;
	while (status != 200 && mono_ms() < until) {
		int d = dial(f.port, "127.0.0.1");
		status = get_ok(d);
		close(d);
	}
	assert_int_equal(status, 200);
	close(a);
	close(c);
	close(other);
	stop(&f);
}

static void slow_sender_cut_at_deadline(void **state)
{
	(void)state;
	fixture_t f = start(0, 0, 400);
	int fd = dial(f.port, "127.0.0.1");
	int64_t t0 = mono_ms();
	const char *req =
	    "GET /ok HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	bool closed = false;
	for (size_t i = 0; req[i] && !closed && mono_ms() - t0 < 5000; i++) {
		char one[2] = {req[i], 0};
		send_text(fd, one);
		closed = closed_within(fd, 100); /* one byte every 100 ms: never idle */
	}
	assert_true(closed);
	assert_true(mono_ms() - t0 >= 400); /* not before the deadline */
	close(fd);
	/* an idle connection that never sent a byte goes the same way */
	fd = dial(f.port, "127.0.0.1");
	assert_true(closed_within(fd, 3000));
	close(fd);
	/* and a quick request on a fresh connection is served */
	fd = dial(f.port, "127.0.0.1");
	assert_int_equal(get_ok(fd), 200);
	close(fd);
	stop(&f);
}

static void early_413_closes(void **state)
{
	(void)state;
	fixture_t f = start(0, 0, 60000);
	int fd = dial(f.port, "127.0.0.1");
	send_text(fd, "POST /in HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	              "Content-Length: 1000000\r\n\r\n");
	char head[2048];
	assert_int_equal(read_status(fd, 3000, head, sizeof(head)), 413); /* no body byte sent */
	assert_non_null(strcasestr(head, "\r\nConnection: close\r\n"));
	assert_true(closed_within(fd, 3000));
	close(fd);
	/* a chunked body past the limit: closed before it is all sent */
	fd = dial(f.port, "127.0.0.1");
	send_text(fd, "POST /in HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n");
	char chunk[520]; /* one chunk of 0x200 bytes */
	memcpy(chunk, "200\r\n", 5);
	memset(chunk + 5, ' ', 512);
	memcpy(chunk + 517, "\r\n", 3);
	bool closed = false;
	for (int i = 0; i < 200 && !closed; i++) {
		send_text(fd, chunk);
		closed = closed_within(fd, 20);
	}
	assert_true(closed || closed_within(fd, 3000));
	close(fd);
	/* a body within the limit is read as before */
	fd = dial(f.port, "127.0.0.1");
	send_text(fd, "POST /in HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	              "Content-Length: 2\r\n\r\n{}");
	assert_int_equal(read_status(fd, 3000, head, sizeof(head)), 200);
	close(fd);
	stop(&f);
}

static void stream_cap_per_address(void **state)
{
	(void)state;
	fixture_t f = start(0, 2, 60000);
	char head[2048];
	int a = dial(f.port, "127.0.0.1"), b = dial(f.port, "127.0.0.1");
	send_text(a, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(read_status(a, 3000, head, sizeof(head)), 200);
	send_text(b, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(read_status(b, 3000, head, sizeof(head)), 200);
	assert_int_equal(pl_http_stream_count(f.server), 2);
	int c = dial(f.port, "127.0.0.1");
	send_text(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(read_status(c, 3000, head, sizeof(head)), 429);
	int d = dial(f.port, "127.0.0.2");
	send_text(d, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(read_status(d, 3000, head, sizeof(head)), 200);
	/* a stream is not cut by the request deadline: checked in the next test */
	close(a);
	close(b);
	close(c);
	close(d);
	stop(&f);
}

static void stream_exempt_from_deadline(void **state)
{
	(void)state;
	fixture_t f = start(0, 0, 400);
	char head[2048];
	int fd = dial(f.port, "127.0.0.1");
	send_text(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(read_status(fd, 3000, head, sizeof(head)), 200);
	assert_false(closed_within(fd, 2500)); /* several sweeps past the 400 ms deadline */
	assert_int_equal(pl_http_stream_write(held_streams[0], "data: x\n\n", 9), PL_OK);
	close(fd);
	stop(&f);
}

static void quiesce_refuses_new_clients(void **state)
{
	(void)state;
	fixture_t f = start(0, 0, 60000);
	int kept = dial(f.port, "127.0.0.1");
	assert_int_equal(get_ok(kept), 200);
	assert_int_equal(pl_http_requests_open(f.server), 0);
	pl_http_server_quiesce(f.server);
	pl_http_server_quiesce(f.server); /* idempotent */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(f.port)};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	close(fd);
	assert_int_equal(get_ok(kept), 200); /* an open connection is still served */
	close(kept);
	stop(&f);
}

int main(void)
{
	pl_log_init("test", PL_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(connection_cap_per_address),
	    cmocka_unit_test(slow_sender_cut_at_deadline),
	    cmocka_unit_test(early_413_closes),
	    cmocka_unit_test(stream_cap_per_address),
	    cmocka_unit_test(stream_exempt_from_deadline),
	    cmocka_unit_test(quiesce_refuses_new_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
