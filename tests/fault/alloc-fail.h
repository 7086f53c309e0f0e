/* alloc-fail.h - make the N-th allocation of the library fail.
 *
 * The test program is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=strdup against the static library, so every
 * allocation the library's objects make goes through the __wrap_ functions
 * of alloc-fail.c.  While armed, they count the allocations of the arming
 * thread; the one numbered `fail_at` (1-based) returns NULL, all others
 * succeed.  fail_at 0 only counts. */
#ifndef BGL_TESTS_ALLOC_FAIL_H
#define BGL_TESTS_ALLOC_FAIL_H

#include <stddef.h>

/* Start counting from zero; fail allocation number fail_at (0: none). */
void alloc_fail_arm(size_t fail_at);
/* Stop counting and failing; returns how many allocations were counted. */
size_t alloc_fail_disarm(void);
/* 1 once the armed failure has happened. */
int alloc_fail_fired(void);

#endif /* BGL_TESTS_ALLOC_FAIL_H */
