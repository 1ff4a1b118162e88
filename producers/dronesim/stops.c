/* stops.c — see stops.h. Invariant: cap is 0 or a power of two >= 16, n <= cap * 3 / 4; key 0
 * marks an empty slot (ended_hash never returns 0). */
#include "mem.h"
#include "stops.h"

typedef struct slot {
	uint64_t delivery, drone;
} slot_t;

struct stops {
	slot_t *slots;
	size_t n, cap;
};

stops_t *stops_new(void)
{
	return pl_calloc(1, sizeof(stops_t));
}

void stops_destroy(stops_t *m)
{
	if (!m)
		return;
	pl_free(m->slots);
	pl_free(m);
}

static slot_t *find(slot_t *slots, size_t cap, uint64_t delivery)
{
	size_t i = (size_t)delivery & (cap - 1);
	while (slots[i].delivery && slots[i].delivery != delivery)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

void stops_put(stops_t *m, uint64_t delivery, uint64_t drone)
{
	if (!delivery)
		return;
	if ((m->n + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		slot_t *slots = pl_calloc(cap, sizeof(*slots));
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].delivery)
				*find(slots, cap, m->slots[i].delivery) = m->slots[i];
		pl_free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	slot_t *s = find(m->slots, m->cap, delivery);
	if (!s->delivery)
		m->n++;
	*s = (slot_t){.delivery = delivery, .drone = drone};
}

bool stops_get(const stops_t *m, uint64_t delivery, uint64_t *drone)
{
	if (!m->cap || !delivery)
		return false;
	const slot_t *s = find(m->slots, m->cap, delivery);
	if (!s->delivery)
		return false;
	*drone = s->drone;
	return true;
}

void stops_each(const stops_t *m, void (*fn)(uint64_t delivery, uint64_t drone, void *arg),
                void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].delivery)
			fn(m->slots[i].delivery, m->slots[i].drone, arg);
}

size_t stops_size(const stops_t *m)
{
	return m->n;
}
