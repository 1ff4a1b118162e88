/* settled.c — see settled.h. Invariant: cap is 0 or a power of two >= 16, n <= cap * 3 / 4,
 * and no stored id hash is {0, 0}. */
#include <string.h>

#include "hash.h"
#include "mem.h"
#include "settled.h"

struct settled {
	settled_entry_t *slots;
	size_t n, cap;
};

/* Two 64-bit hashes of s from different functions (FNV-1a; a multiply-rotate), each
 * finalized. */
static void hash128(const char *s, uint64_t out[2])
{
	uint64_t a = PL_FNV_OFFSET, b = 0x9e3779b97f4a7c15ULL;
	for (; *s; s++) {
		uint64_t c = (unsigned char)*s;
		a = (a ^ c) * PL_FNV_PRIME;
		b = (b + c) * 0xbf58476d1ce4e5b9ULL;
		b = (b << 27) | (b >> 37);
	}
	out[0] = pl_fmix64(a);
	out[1] = pl_fmix64(b ^ 0x94d049bb133111ebULL);
	if (!out[0] && !out[1])
		out[1] = 1;
}

static uint64_t hash64(const char *s)
{
	uint64_t h[2];
	hash128(s, h);
	return h[0];
}

settled_t *settled_new(void)
{
	return pl_calloc(1, sizeof(settled_t));
}

void settled_destroy(settled_t *set)
{
	if (!set)
		return;
	pl_free(set->slots);
	pl_free(set);
}

static bool empty(const settled_entry_t *e)
{
	return !e->id[0] && !e->id[1];
}

static settled_entry_t *find(settled_entry_t *slots, size_t cap, const uint64_t id[2])
{
	size_t i = (size_t)id[0] & (cap - 1);
	while (!empty(&slots[i]) && (slots[i].id[0] != id[0] || slots[i].id[1] != id[1]))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void grow(settled_t *set)
{
	size_t cap = set->cap ? set->cap * 2 : 16;
	settled_entry_t *slots = pl_calloc(cap, sizeof(*slots));
	for (size_t i = 0; i < set->cap; i++)
		if (!empty(&set->slots[i]))
			*find(slots, cap, set->slots[i].id) = set->slots[i];
	pl_free(set->slots);
	set->slots = slots;
	set->cap = cap;
}

bool settled_put(settled_t *set, const char *delivery_id, int status, const char *const *seen,
                 size_t nseen)
{
	if (nseen > SETTLED_SEEN_MAX)
		return false;
	if ((set->n + 1) * 4 > set->cap * 3)
		grow(set);
	uint64_t id[2];
	hash128(delivery_id, id);
	settled_entry_t *e = find(set->slots, set->cap, id);
	if (empty(e))
		set->n++;
	*e = (settled_entry_t){
	    .id = {id[0], id[1]}, .nseen = (uint8_t)nseen, .status = (uint8_t)status};
	for (size_t i = 0; i < nseen; i++)
		e->seen[i] = hash64(seen[i]);
	return true;
}

settled_entry_t *settled_get(const settled_t *set, const char *delivery_id)
{
	if (!set->cap)
		return NULL;
	uint64_t id[2];
	hash128(delivery_id, id);
	settled_entry_t *e = find(set->slots, set->cap, id);
	return empty(e) ? NULL : e;
}

bool settled_seen(const settled_entry_t *e, const char *event_id)
{
	uint64_t h = hash64(event_id);
	for (size_t i = 0; i < e->nseen; i++)
		if (e->seen[i] == h)
			return true;
	return false;
}

size_t settled_size(const settled_t *set)
{
	return set->n;
}
