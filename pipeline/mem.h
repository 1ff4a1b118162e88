/* mem.h — the one allocation wrapper. Out-of-memory aborts here, so callers never check NULL.
 *
 * Tests replace the allocator (pl_mem_set_allocator) to count allocations or to make the Nth
 * one fail; a failing test allocator makes pl_malloc abort, which cmocka's expect_assert-style
 * tests can observe. pl_try_malloc returns NULL instead of aborting: for sizes that come from
 * untrusted input (the avro capped allocator), where failure is an answer, not a crash.
 * Thread-safe as long as the installed allocator is. Leaf module. */
#ifndef PL_MEM_H
#define PL_MEM_H

#include <stddef.h>

typedef struct pl_allocator {
	void *(*malloc_fn)(size_t size);
	void *(*realloc_fn)(void *ptr, size_t size);
	void (*free_fn)(void *ptr);
} pl_allocator_t;

void *pl_malloc(size_t size);
void *pl_calloc(size_t nmemb, size_t size);
void *pl_realloc(void *ptr, size_t size);
char *pl_strdup(const char *s);
char *pl_strndup(const char *s, size_t n);
/* printf into a new string; caller frees with pl_free. */
char *pl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pl_free(void *ptr);

/* May return NULL. */
void *pl_try_malloc(size_t size);

/* Installs an allocator (NULL restores libc). Not thread-safe: call before threads start. */
void pl_mem_set_allocator(const pl_allocator_t *allocator);

#endif
