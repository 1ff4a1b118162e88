/* mem.c — allocation wrapper: one place where out-of-memory aborts. Owns the allocator hooks. */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pl_allocator_t current = {malloc, realloc, free};

void pl_mem_set_allocator(const pl_allocator_t *allocator)
{
	if (allocator)
		current = *allocator;
	else
		current = (pl_allocator_t){malloc, realloc, free};
}

static void oom(size_t size)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"event\":\"out_of_memory\",\"size\":%zu}\n", size);
	abort();
}

void *pl_try_malloc(size_t size)
{
	return current.malloc_fn(size ? size : 1);
}

void *pl_malloc(size_t size)
{
	void *p = current.malloc_fn(size ? size : 1);
	if (!p)
		oom(size);
	return p;
}

void *pl_calloc(size_t nmemb, size_t size)
{
	if (size && nmemb > (size_t)-1 / size)
		oom((size_t)-1);
	void *p = pl_malloc(nmemb * size);
	memset(p, 0, nmemb * size);
	return p;
}

void *pl_realloc(void *ptr, size_t size)
{
	void *p = current.realloc_fn(ptr, size ? size : 1);
	if (!p)
		oom(size);
	return p;
}

char *pl_strndup(const char *s, size_t n)
{
	char *p = pl_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *pl_strdup(const char *s)
{
	return pl_strndup(s, strlen(s));
}

char *pl_asprintf(const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	char *p = pl_malloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

void pl_free(void *ptr)
{
	if (ptr)
		current.free_fn(ptr);
}
