/* check.h — the CHECK counter of the store integration test programs (test_stores,
 * test_redis_store): CHECK(cond, fmt, ...) counts a pass or prints the failed condition with its
 * place and the formatted detail. The program prints "passed"/"failed" at its end. */
#ifndef TESTS_IT_CHECK_H
#define TESTS_IT_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			printf("FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond);                    \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

#endif
