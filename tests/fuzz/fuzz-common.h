/* fuzz-common.h - what every libFuzzer harness of libbgloop shares: the
 * input read as a stream of small numbers, the invariant check that aborts
 * (libFuzzer then saves the input), a settable clock, and the open
 * descriptor count. */
#ifndef BGL_FUZZ_COMMON_H
#define BGL_FUZZ_COMMON_H

#include <bgloop/bgloop.h>

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An invariant of the library did not hold: print it and abort, which
 * libFuzzer reports as a crash and saves the input for. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed at %s:%d: %s: ", __FILE__, __LINE__, \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* A call that must succeed. */
#define MUST(call)                                                             \
    do {                                                                       \
        int rc_ = (call);                                                      \
        CHECK(rc_ >= 0, "%s returned %d (%s)", #call, rc_, bgl_strerror(rc_)); \
    } while (0)

/* A call that must return exactly `want`. */
#define EXPECT(call, want)                                                     \
    do {                                                                       \
        int rc_ = (call);                                                      \
        CHECK(rc_ == (want), "%s returned %d (%s), expected %d", #call, rc_,   \
              bgl_strerror(rc_), (int)(want));                                 \
    } while (0)

/* BGL_FUZZ_TRACE=1 in the environment: print the steps of an input (to
 * read what a saved crash input does). */
static int fuzz_trace_on = -1;
#define TRACE(...)                                                             \
    do {                                                                       \
        if (fuzz_trace_on < 0)                                                 \
            fuzz_trace_on = getenv("BGL_FUZZ_TRACE") != NULL;                  \
        if (fuzz_trace_on)                                                     \
            fprintf(stderr, __VA_ARGS__);                                      \
    } while (0)

/* The input, consumed front to back; an exhausted input reads as zeros. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline int fin_left(const fuzz_in *in)
{
    return in->n > 0;
}

static inline unsigned fin_u8(fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline unsigned fin_u16(fuzz_in *in)
{
    unsigned lo = fin_u8(in);
    return lo | fin_u8(in) << 8;
}

/* 0 .. n-1 */
static inline unsigned fin_below(fuzz_in *in, unsigned n)
{
    return n <= 256 ? fin_u8(in) % n : fin_u16(in) % n;
}

/* One of the values of a table. */
#define FIN_PICK(in, table) ((table)[fin_below((in), sizeof(table) / sizeof((table)[0]))])

/* The loops run on this clock: time moves only when the input says so, so
 * every run of an input is the same run. */
typedef struct fuzz_clock {
    uint64_t now;
} fuzz_clock;

static inline uint64_t fuzz_clock_read(void *ud)
{
    return ((fuzz_clock *)ud)->now;
}

/* Open descriptors of the process (compared before and after each input). */
static inline int fuzz_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

#endif /* BGL_FUZZ_COMMON_H */
