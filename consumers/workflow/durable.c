/* durable.c — see durable.h. A ring buffer of entries, grown by doubling.
 * Invariant: 0 <= head < cap (when cap > 0), n <= cap; entries head..head+n-1 (mod cap) are
 * queued in order; handled[t] and stored[t] only grow. */
#include <string.h>

#include "durable.h"
#include "mem.h"

typedef struct entry {
	char *delivery_id; /* NULL = every saga of the partition */
	int64_t need[DUR_TOPICS];
} entry_t;

struct dur {
	entry_t *ring;
	size_t head, n, cap;
	int64_t handled[DUR_TOPICS]; /* offset after the last handled input; 0 = none */
	int64_t stored[DUR_TOPICS];  /* resume offset; -1 = unknown */
};

dur_t *dur_new(void)
{
	dur_t *d = pl_calloc(1, sizeof(*d));
	for (int t = 0; t < DUR_TOPICS; t++)
		d->stored[t] = -1;
	return d;
}

void dur_destroy(dur_t *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		pl_free(d->ring[(d->head + i) % d->cap].delivery_id);
	pl_free(d->ring);
	pl_free(d);
}

static bool topic_ok(int topic)
{
	return topic >= 0 && topic < DUR_TOPICS;
}

void dur_handled(dur_t *d, int topic, int64_t offset)
{
	if (topic_ok(topic) && offset + 1 > d->handled[topic])
		d->handled[topic] = offset + 1;
}

void dur_stored(dur_t *d, int topic, int64_t next_offset)
{
	if (topic_ok(topic) && next_offset > d->stored[topic])
		d->stored[topic] = next_offset;
}

static void push(dur_t *d, char *delivery_id, const int64_t need[DUR_TOPICS])
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		entry_t *ring = pl_malloc(cap * sizeof(*ring));
		for (size_t i = 0; i < d->n; i++)
			ring[i] = d->ring[(d->head + i) % d->cap];
		pl_free(d->ring);
		d->ring = ring;
		d->head = 0;
		d->cap = cap;
	}
	entry_t *e = &d->ring[(d->head + d->n) % d->cap];
	e->delivery_id = delivery_id;
	memcpy(e->need, need, sizeof(e->need));
	d->n++;
}

void dur_watch(dur_t *d, const char *delivery_id)
{
	push(d, pl_strdup(delivery_id), d->handled);
}

void dur_watch_all(dur_t *d, const int64_t end[DUR_TOPICS])
{
	push(d, NULL, end);
}

bool dur_next_ready(dur_t *d, char **delivery_id)
{
	if (d->n == 0)
		return false;
	entry_t *e = &d->ring[d->head];
	for (int t = 0; t < DUR_TOPICS; t++)
		if (e->need[t] > 0 && d->stored[t] < e->need[t])
			return false;
	*delivery_id = e->delivery_id;
	d->head = (d->head + 1) % d->cap;
	d->n--;
	return true;
}

size_t dur_waiting(const dur_t *d)
{
	return d->n;
}
