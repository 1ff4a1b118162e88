/* e2e.c — end-to-end open-loop load (scenario 4 of `make bench`).
 *
 * Posts deliveries to the ingress at a fixed rate for a fixed time while consuming
 * dronedelivery.delivery.events, then waits (up to DRAIN seconds) for every accepted delivery to
 * reach Scheduled and Completed. Open loop: request i is due at t0 + i/rate whatever happened to
 * the others; WORKERS threads, each with one keep-alive connection and blocking sockets, take the
 * next due request. Client latency is measured from the due time (not the send time), so a slow
 * server shows up as latency instead of as a lower offered rate; requests sent more than 100 ms
 * late are counted.
 *
 * Latencies, per delivery, from the lifecycle events (DeliveryLifecycle):
 *   ingress->Scheduled   event `time` of Scheduled minus `requestedAt` (the ingress's clock at
 *                        the POST, the DeliveryRequested record's time)
 *   ingress->Created     the same for Created (the workflow consumed the request)
 *   Created->Scheduled   package stored + drone claimed (package, scheduler, FerretDB)
 *   ingress->Completed   the same for Completed
 *   post->Scheduled      Scheduled event's produced_at header minus the POST's due time
 * Prints one JSON object.
 *
 * Usage: bench-e2e HOST PORT RATE SECONDS [DRAIN_S [WORKERS]]   (DP_KAFKA_BROKERS for the events)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "avro.h"
#include "kafka.h"

#define EVENTS_TOPIC "dronedelivery.delivery.events"

static const char *host;
static int port;
static double rate;
static double duration;
static long total;
static double t0_mono;  /* monotonic seconds of request 0's due time */
static int64_t t0_wall; /* wall ms of the same instant */
static atomic_long next_idx;
static atomic_long n202, nnon202, nerr, nlate;
static char run_tag[32];

/* ---- per-delivery table (open addressing on deliveryId) ---------------------------------- */
typedef struct entry {
	char id[37];
	bool used, posted;
	int64_t due_ms;       /* wall ms the POST was due */
	int64_t requested_at; /* from the events */
	int64_t created_time, sched_time, sched_produced, completed_time;
	bool failed;
} entry_t;
static entry_t *table;
static size_t table_cap;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static long n_sched, n_completed, n_failed, n_posted_known;

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* with table_lock held */
static entry_t *lookup(const char *id)
{
	size_t i = hash_id(id) & (table_cap - 1);
	while (table[i].used && strcmp(table[i].id, id) != 0)
		i = (i + 1) & (table_cap - 1);
	if (!table[i].used) {
		table[i].used = true;
		snprintf(table[i].id, sizeof(table[i].id), "%s", id);
	}
	return &table[i];
}

/* ---- latency arrays ----------------------------------------------------------------------- */
typedef struct samples {
	double *v;
	size_t n, cap;
} samples_t;

static void add_sample(samples_t *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(double));
	}
	s->v[s->n++] = x;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(samples_t *s, double p)
{
	if (!s->n)
		return -1;
	size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
	return s->v[i];
}

static void print_samples(const char *name, samples_t *s, bool comma)
{
	qsort(s->v, s->n, sizeof(double), cmp_d);
	printf("\"%s\":{\"n\":%zu,\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f}%s", name,
	       s->n, pct(s, 50), pct(s, 95), pct(s, 99), s->n ? s->v[s->n - 1] : -1.0,
	       comma ? "," : "");
}

static samples_t http_lat; /* ms, due -> response; guarded by http_lock */
static pthread_mutex_t http_lock = PTHREAD_MUTEX_INITIALIZER;

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- HTTP workers ------------------------------------------------------------------------- */
static int connect_to(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads one response; returns the status (0 on error) and copies the Location path's id. */
static int read_response(int fd, char *buf, size_t cap, char id[37])
{
	size_t have = 0;
	char *hend = NULL;
	while (!hend) {
		if (have + 1 >= cap)
			return 0;
		ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r <= 0)
			return 0;
		have += (size_t)r;
		buf[have] = '\0';
		hend = strstr(buf, "\r\n\r\n");
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	long clen = 0;
	id[0] = '\0';
	for (char *line = strstr(buf, "\r\n") + 2; line < hend; line = strstr(line, "\r\n") + 2) {
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = atol(line + 15);
		else if (strncasecmp(line, "Location:", 9) == 0) {
			const char *p = strstr(line, "/api/deliveries/");
			if (p)
				snprintf(id, 37, "%.36s", p + 16);
		}
	}
	size_t body_have = have - (size_t)(hend + 4 - buf);
	while ((long)body_have < clen) {
		char tmp[4096];
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
		if (r <= 0)
			return 0;
		body_have += (size_t)r;
	}
	return status;
}

static void *worker(void *arg)
{
	(void)arg;
	int fd = -1;
	char req[1024], body[600], buf[8192], id[37];
	static const char *sizes[] = {"Small", "Medium", "Large"};
	for (;;) {
		long i = atomic_fetch_add(&next_idx, 1);
		if (i >= total)
			break;
		double due = t0_mono + (double)i / rate;
		double now = mono_s();
		if (due > now) {
			double d = due - now;
			struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
			nanosleep(&ts, NULL);
		} else if (now - due > 0.1) {
			atomic_fetch_add(&nlate, 1);
		}
		int blen =
		    snprintf(body, sizeof(body),
		             "{\"ownerId\":\"%s-%ld\",\"pickupLocation\":\"47.%04ld,-122.%04ld\","
		             "\"dropOffLocation\":\"47.%04ld,-122.%04ld\",\"pickupTime\":\"2026-11-"
		             "27T10:00:00Z\","
		             "\"confirmationRequired\":\"None\",\"packageInfo\":{\"packageId\":"
		             "\"pkg-%s-%ld\","
		             "\"size\":\"%s\",\"weight\":%ld.5}}",
		             run_tag, i % 1000, 5000 + i % 2500, 2000 + i % 2500, 5100 + i % 2300,
		             2100 + i % 2300, run_tag, i, sizes[i % 3], i % 20);
		int rlen =
		    snprintf(req, sizeof(req),
		             "POST /api/deliveryrequests HTTP/1.1\r\nHost: %s:%d\r\n"
		             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		             host, port, blen, body);
		int status = 0;
		for (int attempt = 0; attempt < 2 && !status; attempt++) {
			if (fd < 0 && (fd = connect_to()) < 0)
				break;
			if (send_all(fd, req, (size_t)rlen))
				status = read_response(fd, buf, sizeof(buf), id);
			if (!status) {
				close(fd);
				fd = -1;
			}
		}
		double lat_ms = (mono_s() - due) * 1000.0;
		if (!status) {
			atomic_fetch_add(&nerr, 1);
			continue;
		}
		pthread_mutex_lock(&http_lock);
		add_sample(&http_lat, lat_ms);
		pthread_mutex_unlock(&http_lock);
		if (status == 202 && id[0]) {
			atomic_fetch_add(&n202, 1);
			pthread_mutex_lock(&table_lock);
			entry_t *e = lookup(id);
			e->posted = true;
			e->due_ms = t0_wall + (int64_t)((double)i * 1000.0 / rate);
			n_posted_known++;
			pthread_mutex_unlock(&table_lock);
		} else {
			atomic_fetch_add(&nnon202, 1);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* ---- events consumer ---------------------------------------------------------------------- */
static atomic_bool consumer_stop;
static rd_kafka_t *rk;
static pl_avro_registry_t *reg;
static atomic_long events_seen, events_bad;

static void on_event(rd_kafka_message_t *m)
{
	json_t *v = NULL;
	char err[256];
	if (pl_avro_decode(reg, m->payload, m->len, &v, NULL, err, sizeof(err)) != PL_OK) {
		atomic_fetch_add(&events_bad, 1);
		return;
	}
	atomic_fetch_add(&events_seen, 1);
	const char *stage = json_string_value(json_object_get(v, "stage"));
	const char *id = json_string_value(json_object_get(v, "deliveryId"));
	const char *owner = json_string_value(json_object_get(v, "ownerId"));
	if (!stage || !id || !owner || strncmp(owner, run_tag, strlen(run_tag)) != 0) {
		json_decref(v);
		return;
	}
	int64_t t = json_integer_value(json_object_get(v, "time"));
	int64_t req_at = json_integer_value(json_object_get(v, "requestedAt"));
	int64_t produced = -1;
	rd_kafka_headers_t *hdrs = NULL;
	const void *hv;
	size_t hl;
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(hdrs, "produced_at", &hv, &hl) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    hl < 24) {
		char b[24];
		memcpy(b, hv, hl);
		b[hl] = '\0';
		produced = atoll(b);
	}
	pthread_mutex_lock(&table_lock);
	entry_t *e = lookup(id);
	e->requested_at = req_at;
	if (strcmp(stage, "Created") == 0 && !e->created_time) {
		e->created_time = t;
	} else if (strcmp(stage, "Scheduled") == 0 && !e->sched_time) {
		e->sched_time = t;
		e->sched_produced = produced;
		n_sched++;
	} else if (strcmp(stage, "Completed") == 0 && !e->completed_time) {
		e->completed_time = t;
		n_completed++;
	} else if ((strcmp(stage, "Failed") == 0 || strcmp(stage, "Cancelled") == 0) &&
	           !e->failed) {
		e->failed = true;
		n_failed++;
	}
	pthread_mutex_unlock(&table_lock);
	json_decref(v);
}

static void *consumer_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&consumer_stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err)
			on_event(m);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static bool start_consumer(const char *brokers, char *err, size_t errsz)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char gid[64];
	snprintf(gid, sizeof(gid), "bench-e2e-%s", run_tag);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errsz) ||
	    rd_kafka_conf_set(conf, "group.id", gid, err, errsz) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz) ||
	    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", err, errsz))
		return false;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsz);
	if (!rk)
		return false;
	rd_kafka_poll_set_consumer(rk);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, EVENTS_TOPIC, NULL);
	if (rd_kafka_metadata(rk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1 || md->topics[0].partition_cnt <= 0) {
		snprintf(err, errsz, "no metadata for %s", EVENTS_TOPIC);
		return false;
	}
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int p = 0; p < md->topics[0].partition_cnt; p++)
		rd_kafka_topic_partition_list_add(parts, EVENTS_TOPIC, p)->offset =
		    RD_KAFKA_OFFSET_END;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (e) {
		snprintf(err, errsz, "assign: %s", rd_kafka_err2str(e));
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bench-e2e HOST PORT RATE SECONDS [DRAIN_S [WORKERS]]\n");
		return 1;
	}
	host = argv[1];
	port = atoi(argv[2]);
	rate = atof(argv[3]);
	duration = atof(argv[4]);
	double drain = argc > 5 ? atof(argv[5]) : 30;
	int nworkers = argc > 6 ? atoi(argv[6]) : 64;
	total = (long)(rate * duration);
	signal(SIGPIPE, SIG_IGN);
	snprintf(run_tag, sizeof(run_tag), "e2e%lx", (unsigned long)time(NULL));
	table_cap = 1;
	while (table_cap < (size_t)total * 4 + 1024)
		table_cap <<= 1;
	table = calloc(table_cap, sizeof(entry_t));
	char err[512] = "";
	reg = pl_avro_registry_embedded(err, sizeof(err));
	const char *brokers = getenv("DP_KAFKA_BROKERS");
	if (!reg || !start_consumer(brokers ? brokers : "127.0.0.1:9092", err, sizeof(err))) {
		fprintf(stderr, "bench-e2e: %s\n", err);
		return 2;
	}
	pthread_t ct;
	pthread_create(&ct, NULL, consumer_main, NULL);
	/* let the consumer fetch its end offsets before the first POST */
	sleep(2);
	t0_mono = mono_s() + 0.2;
	t0_wall = pl_now_ms() + 200;
	pthread_t *w = calloc((size_t)nworkers, sizeof(pthread_t));
	for (int i = 0; i < nworkers; i++)
		pthread_create(&w[i], NULL, worker, NULL);
	for (int i = 0; i < nworkers; i++)
		pthread_join(w[i], NULL);
	double load_end = mono_s();
	double send_s = load_end - t0_mono;
	/* drain: wait until every accepted delivery is Scheduled and Completed (or DRAIN passes) */
	double sched_done = -1, all_done = -1;
	while (mono_s() - load_end < drain) {
		pthread_mutex_lock(&table_lock);
		long s = n_sched, c = n_completed, f = n_failed;
		pthread_mutex_unlock(&table_lock);
		long acc = atomic_load(&n202);
		if (sched_done < 0 && s >= acc)
			sched_done = mono_s() - load_end;
		if (c + f >= acc) {
			all_done = mono_s() - load_end;
			break;
		}
		usleep(50000);
	}
	atomic_store(&consumer_stop, true);
	pthread_join(ct, NULL);

	samples_t s_sched = {0}, s_compl = {0}, s_post_sched = {0}, s_sched_first = {0},
	          s_sched_last = {0}, s_created = {0}, s_created_sched = {0};
	long posted = 0, sched_posted = 0, compl_posted = 0;
	int64_t q1 = t0_wall + (int64_t)(duration * 250), q3 = t0_wall + (int64_t)(duration * 750);
	for (size_t i = 0; i < table_cap; i++) {
		entry_t *e = &table[i];
		if (!e->used || !e->posted)
			continue;
		posted++;
		if (e->created_time)
			add_sample(&s_created, (double)(e->created_time - e->requested_at));
		if (e->created_time && e->sched_time)
			add_sample(&s_created_sched, (double)(e->sched_time - e->created_time));
		if (e->sched_time) {
			sched_posted++;
			double l = (double)(e->sched_time - e->requested_at);
			add_sample(&s_sched, l);
			if (e->due_ms < q1)
				add_sample(&s_sched_first, l);
			else if (e->due_ms >= q3)
				add_sample(&s_sched_last, l);
			if (e->sched_produced > 0)
				add_sample(&s_post_sched, (double)(e->sched_produced - e->due_ms));
		}
		if (e->completed_time) {
			compl_posted++;
			add_sample(&s_compl, (double)(e->completed_time - e->requested_at));
		}
	}
	printf("{\"rate\":%.0f,\"seconds\":%.0f,\"offered\":%ld,\"send_seconds\":%.2f,"
	       "\"achieved_rate\":%.1f,\"accepted_202\":%ld,\"non_202\":%ld,\"http_errors\":%ld,"
	       "\"late_over_100ms\":%ld,\"scheduled\":%ld,\"completed\":%ld,\"failed_or_"
	       "cancelled\":%ld,"
	       "\"all_scheduled_after_s\":%.2f,\"all_done_after_s\":%.2f,\"events_seen\":%ld,"
	       "\"events_undecodable\":%ld,",
	       rate, duration, total, send_s,
	       (double)(atomic_load(&n202) + atomic_load(&nnon202)) / send_s, atomic_load(&n202),
	       atomic_load(&nnon202), atomic_load(&nerr), atomic_load(&nlate), sched_posted,
	       compl_posted, n_failed, sched_done, all_done, atomic_load(&events_seen),
	       atomic_load(&events_bad));
	print_samples("http_ms", &http_lat, true);
	print_samples("ingress_to_created_ms", &s_created, true);
	print_samples("created_to_scheduled_ms", &s_created_sched, true);
	print_samples("ingress_to_scheduled_ms", &s_sched, true);
	print_samples("ingress_to_scheduled_first_quarter_ms", &s_sched_first, true);
	print_samples("ingress_to_scheduled_last_quarter_ms", &s_sched_last, true);
	print_samples("post_to_scheduled_produced_ms", &s_post_sched, true);
	print_samples("ingress_to_completed_ms", &s_compl, false);
	printf("}\n");
	(void)posted;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	pl_avro_registry_destroy(reg);
	return 0;
}
