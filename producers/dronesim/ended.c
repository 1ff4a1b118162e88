/* ended.c — see ended.h. Invariants: buckets are sorted by key (floor(time / bucket_ms)), none
 * is empty; in each, cap is a power of two >= 16, n <= cap * 3 / 4, and hash 0 marks an empty
 * slot (a real hash of 0 is stored as 1); a hash is in at most one bucket. */
#include <string.h>

#include "ended.h"
#include "hash.h"
#include "mem.h"

typedef struct bucket {
	int64_t key;
	uint64_t *slots;
	size_t n, cap;
} bucket_t;

struct ended {
	int64_t width;
	bucket_t *buckets;
	size_t nbuckets, room, n;
};

uint64_t ended_hash(const char *s)
{
	uint64_t h = pl_hash_str64(s);
	return h ? h : 1;
}

ended_t *ended_new(int64_t bucket_ms)
{
	ended_t *set = pl_calloc(1, sizeof(ended_t));
	set->width = bucket_ms > 0 ? bucket_ms : 1;
	return set;
}

void ended_destroy(ended_t *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->nbuckets; i++)
		pl_free(set->buckets[i].slots);
	pl_free(set->buckets);
	pl_free(set);
}

static uint64_t *find(uint64_t *slots, size_t cap, uint64_t hash)
{
	size_t i = (size_t)hash & (cap - 1);
	while (slots[i] && slots[i] != hash)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static bool bucket_has(const bucket_t *b, uint64_t hash)
{
	return *find(b->slots, b->cap, hash) != 0;
}

static void grow(bucket_t *b)
{
	size_t cap = b->cap ? b->cap * 2 : 16;
	uint64_t *slots = pl_calloc(cap, sizeof(*slots));
	for (size_t i = 0; i < b->cap; i++)
		if (b->slots[i])
			*find(slots, cap, b->slots[i]) = b->slots[i];
	pl_free(b->slots);
	b->slots = slots;
	b->cap = cap;
}

/* floor(t / width), also for negative t */
static int64_t key_of(const ended_t *set, int64_t t)
{
	return t >= 0 ? t / set->width : -((-t + set->width - 1) / set->width);
}

/* The bucket of key, made (in sorted place) when there is none. */
static bucket_t *bucket_for(ended_t *set, int64_t key)
{
	size_t i = set->nbuckets;
	while (i > 0 && set->buckets[i - 1].key > key) /* the newest is the usual one */
		i--;
	if (i > 0 && set->buckets[i - 1].key == key)
		return &set->buckets[i - 1];
	if (set->nbuckets == set->room) {
		set->room = set->room ? set->room * 2 : 4;
		set->buckets = pl_realloc(set->buckets, set->room * sizeof(*set->buckets));
	}
	memmove(&set->buckets[i + 1], &set->buckets[i],
	        (set->nbuckets - i) * sizeof(*set->buckets));
	set->buckets[i] = (bucket_t){.key = key};
	set->nbuckets++;
	grow(&set->buckets[i]);
	return &set->buckets[i];
}

void ended_add(ended_t *set, const char *delivery_id, int64_t now_ms)
{
	ended_add_hash(set, ended_hash(delivery_id), now_ms);
}

void ended_add_hash(ended_t *set, uint64_t h, int64_t now_ms)
{
	for (size_t i = 0; i < set->nbuckets; i++)
		if (bucket_has(&set->buckets[i], h))
			return; /* noted before: keeps its time */
	bucket_t *b = bucket_for(set, key_of(set, now_ms));
	if ((b->n + 1) * 4 > b->cap * 3)
		grow(b);
	*find(b->slots, b->cap, h) = h;
	b->n++;
	set->n++;
}

bool ended_has(const ended_t *set, const char *delivery_id)
{
	return ended_has_hash(set, ended_hash(delivery_id));
}

bool ended_has_hash(const ended_t *set, uint64_t h)
{
	for (size_t i = set->nbuckets; i > 0; i--) /* newest first: where late records look */
		if (bucket_has(&set->buckets[i - 1], h))
			return true;
	return false;
}

size_t ended_prune(ended_t *set, int64_t before_ms)
{
	size_t gone = 0, drop = 0;
	/* bucket k covers [k * width, (k + 1) * width): all before before_ms when k < key(before)
	 */
	int64_t cut = key_of(set, before_ms);
	while (drop < set->nbuckets && set->buckets[drop].key < cut) {
		gone += set->buckets[drop].n;
		pl_free(set->buckets[drop].slots);
		drop++;
	}
	if (drop) {
		memmove(set->buckets, &set->buckets[drop],
		        (set->nbuckets - drop) * sizeof(*set->buckets));
		set->nbuckets -= drop;
		set->n -= gone;
	}
	return gone;
}

size_t ended_size(const ended_t *set)
{
	return set->n;
}
