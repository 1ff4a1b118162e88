/* hash.h — the 64-bit string hash shared by the services' in-memory sets: FNV-1a, and
 * MurmurHash3's fmix64 finalizer so that every input bit moves every output bit. Header only,
 * no state. */
#ifndef PL_HASH_H
#define PL_HASH_H

#include <stdint.h>

#define PL_FNV_OFFSET 14695981039346656037ULL
#define PL_FNV_PRIME  1099511628211ULL

static inline uint64_t pl_fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* fmix64(FNV-1a(s)) */
static inline uint64_t pl_hash_str64(const char *s)
{
	uint64_t h = PL_FNV_OFFSET;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * PL_FNV_PRIME;
	return pl_fmix64(h);
}

#endif
