/* probe.c — store health from recorded outcomes, and the idle ping thread (see probe.h).
 * Owns: the records (under lock) and the thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mem.h"
#include "probe.h"
#include "timefmt.h"

typedef struct record {
	bool known, ok;
	int64_t last_ms;          /* the last outcome */
	int64_t last_ok_ms;       /* the last success (0: none) */
	int64_t failing_since_ms; /* the first failure after a success (when !ok) */
	char err[256];
} record_t;

struct pl_probe {
	char *dependency;
	int64_t idle_ms, stale_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	record_t rec[PL_PROBE__COUNT]; /* lock */
	bool stopping;                 /* lock */
	bool running;
	pthread_t thread;
	pl_probe_ping_fn ping;
	void *arg;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pl_probe_t *pl_probe_new(const char *dependency, int64_t idle_ms, int64_t stale_ms)
{
	pl_probe_t *p = pl_calloc(1, sizeof(*p));
	p->dependency = pl_strdup(dependency);
	p->idle_ms = idle_ms > 0 ? idle_ms : 1000;
	p->stale_ms = stale_ms > p->idle_ms ? stale_ms : p->idle_ms * 2;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	return p;
}

static void *ping_main(void *arg)
{
	pl_probe_t *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		int64_t now = now_ms(), last = p->rec[PL_PROBE_CALLS].last_ms, wait;
		if (!p->rec[PL_PROBE_CALLS].known || now - last >= p->idle_ms) {
			pthread_mutex_unlock(&p->lock);
			p->ping(p->arg); /* notes its own outcome */
			pthread_mutex_lock(&p->lock);
			wait = p->idle_ms;
		} else {
			wait = p->idle_ms - (now - last);
		}
		if (p->stopping)
			break;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait / 1000;
		until.tv_nsec += (wait % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->wake, &p->lock, &until);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void pl_probe_start(pl_probe_t *p, pl_probe_ping_fn ping, void *arg)
{
	p->ping = ping;
	p->arg = arg;
	p->running = pthread_create(&p->thread, NULL, ping_main, p) == 0;
}

void pl_probe_destroy(pl_probe_t *p)
{
	if (!p)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	pl_free(p->dependency);
	pl_free(p);
}

void pl_probe_note(pl_probe_t *p, pl_probe_record_t which, bool ok, const char *err)
{
	if (!p || (unsigned)which >= PL_PROBE__COUNT)
		return;
	int64_t now = now_ms();
	pthread_mutex_lock(&p->lock);
	record_t *r = &p->rec[which];
	if (!ok && (r->ok || !r->known))
		r->failing_since_ms = now;
	r->known = true;
	r->ok = ok;
	r->last_ms = now;
	if (ok)
		r->last_ok_ms = now;
	else
		snprintf(r->err, sizeof(r->err), "%s", err && *err ? err : "failed");
	pthread_mutex_unlock(&p->lock);
}

static void failing(const pl_probe_t *p, const record_t *r, const char *what, int64_t now,
                    char *reason, size_t reason_size)
{
	char since[32] = "?";
	pl_time_format(r->failing_since_ms, since);
	snprintf(reason, reason_size, "%s: %s%s (failing since %s, %lld s)", p->dependency, what,
	         r->err, since, (long long)((now - r->failing_since_ms) / 1000));
}

bool pl_probe_ready(pl_probe_t *p, char *reason, size_t reason_size)
{
	int64_t now = now_ms();
	bool ready = false;
	pthread_mutex_lock(&p->lock);
	const record_t *calls = &p->rec[PL_PROBE_CALLS], *writes = &p->rec[PL_PROBE_WRITES];
	if (!calls->known)
		snprintf(reason, reason_size, "%s: no answer yet", p->dependency);
	else if (!calls->ok)
		failing(p, calls, "", now, reason, reason_size);
	else if (writes->known && !writes->ok)
		failing(p, writes, "refuses writes: ", now, reason, reason_size);
	else if (now - calls->last_ok_ms > p->stale_ms)
		snprintf(reason, reason_size, "%s: no answer for %lld s", p->dependency,
		         (long long)((now - calls->last_ok_ms) / 1000));
	else
		ready = true;
	pthread_mutex_unlock(&p->lock);
	return ready;
}
