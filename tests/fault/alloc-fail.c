/* alloc-fail.c - the allocation wrappers of alloc-fail.h. */
#include "alloc-fail.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);

static int armed;
static pthread_t armed_thread;
static size_t count, fail_at;
static int fired;

void alloc_fail_arm(size_t n)
{
    count = 0;
    fail_at = n;
    fired = 0;
    armed_thread = pthread_self();
    armed = 1;
}

size_t alloc_fail_disarm(void)
{
    armed = 0;
    return count;
}

int alloc_fail_fired(void)
{
    return fired;
}

/* Is this allocation the one to fail?  Other threads are never counted, so
 * a scenario's count does not depend on scheduling. */
static int should_fail(void)
{
    if (!armed || !pthread_equal(pthread_self(), armed_thread))
        return 0;
    if (++count != fail_at)
        return 0;
    fired = 1;
    return 1;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}
