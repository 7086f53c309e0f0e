/* main.c - run each workload on libbgloop and libuv, alternating, and print
 * operations per second (of process CPU time, see bench.h) and the ratio
 * bgloop/libuv.
 *
 * Usage: bgloop_bench [-r REPS] [-s SCALE]
 *   -r REPS   repetitions per library and workload (default 5); the best
 *             run counts (noise on a shared machine only ever slows down),
 *             the median is printed too
 *   -s SCALE  multiply every workload size (default 1.0)
 *
 * Then services_graph, a libbgloop-only workload (the service manager has no
 * libuv counterpart): its time in milliseconds, best (median).
 *
 * The last two lines are machine-readable:
 *   RESULT name=bgloop_ops/libuv_ops=ratio ...
 *   RESULT_BGLOOP services_graph_ms=best
 */
#include "bench.h"

#include <bgloop/bgloop.h>
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct workload {
    const char *name;
    const char *what;
    long n;
    long unit; /* n is a multiple of this: whole batches, whole timer rounds */
    int64_t (*bgl)(long n);
    int64_t (*uv)(long n);
};

static struct workload workloads[] = {
    {"callbacks_chain", "callbacks/s, each schedules the next", 500000, 1,
     bgl_bench_chain, uv_bench_chain},
    {"callbacks_batch", "callbacks/s, batches of 1000", 5000000, BENCH_BATCH,
     bgl_bench_batch, uv_bench_batch},
    {"timers", "timers/s, arm + cancel half + fire half", 2000000, BENCH_TIMERS,
     bgl_bench_timers, uv_bench_timers},
    {"pingpong", "socketpair messages/s, one byte each way", 500000, 1,
     bgl_bench_pingpong, uv_bench_pingpong},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: bgloop_bench [-r REPS] [-s SCALE]\n");
}

int main(int argc, char **argv)
{
    int reps = 5;
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            reps = (int)strtol(argv[++i], &end, 10);
            if (*end || reps < 1 || reps > 1000)
                return usage(), 2;
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            scale = strtod(argv[++i], &end);
            if (*end || !(scale > 0 && scale <= 1000))
                return usage(), 2;
        } else {
            return usage(), 2;
        }
    }

    size_t nw = sizeof workloads / sizeof workloads[0];
    double best[2][sizeof workloads / sizeof workloads[0]];
    printf("libbgloop %s vs libuv %s: operations per CPU second, %d runs each, "
           "best (median)\n\n",
           bgl_version(), uv_version_string(), reps);
    printf("%-16s %26s %26s %8s\n", "workload", "bgloop ops/s", "libuv ops/s",
           "bgl/uv");
    for (size_t w = 0; w < nw; w++) {
        struct workload *wl = &workloads[w];
        long unit = wl->unit;
        long n = (long)(wl->n * scale) / unit * unit;
        if (n < unit)
            n = unit;
        double *ops[2];
        for (int lib = 0; lib < 2; lib++)
            ops[lib] = calloc((size_t)reps, sizeof(double));
        if (!ops[0] || !ops[1])
            return 1;
        /* alternate so that slow phases of a shared machine hit both */
        for (int rep = 0; rep < reps; rep++) {
            for (int lib = 0; lib < 2; lib++) {
                int64_t ns = lib == 0 ? wl->bgl(n) : wl->uv(n);
                if (ns < 0) {
                    fprintf(stderr, "%s on %s failed: %s\n", wl->name,
                            lib == 0 ? "bgloop" : "libuv", bgl_strerror((int)ns));
                    return 1;
                }
                ops[lib][rep] = ns > 0 ? n * 1e9 / (double)ns : 0;
            }
        }
        double med[2];
        for (int lib = 0; lib < 2; lib++) {
            qsort(ops[lib], (size_t)reps, sizeof(double), cmp_double);
            best[lib][w] = ops[lib][reps - 1];
            med[lib] = ops[lib][reps / 2];
            free(ops[lib]);
        }
        char a[64], b[64];
        snprintf(a, sizeof a, "%.0f (%.0f)", best[0][w], med[0]);
        snprintf(b, sizeof b, "%.0f (%.0f)", best[1][w], med[1]);
        printf("%-16s %26s %26s %8.2f\n", wl->name, a, b, best[0][w] / best[1][w]);
        fflush(stdout);
    }

    /* libbgloop only: no libuv counterpart, so a time rather than a ratio. */
    double *ms = calloc((size_t)reps, sizeof(double));
    if (!ms)
        return 1;
    for (int rep = 0; rep < reps; rep++) {
        int64_t ns = bgl_bench_services();
        if (ns < 0) {
            fprintf(stderr, "services_graph on bgloop failed: %s\n", bgl_strerror((int)ns));
            return 1;
        }
        ms[rep] = (double)ns / 1e6;
    }
    qsort(ms, (size_t)reps, sizeof(double), cmp_double);
    double svc_best = ms[0], svc_median = ms[reps / 2];
    free(ms);
    char svc_text[64];
    snprintf(svc_text, sizeof svc_text, "%.2f ms (%.2f ms)", svc_best, svc_median);
    printf("%-16s %26s\n", "services_graph", svc_text);
    printf("\n");
    for (size_t w = 0; w < nw; w++)
        printf("  %-16s %s\n", workloads[w].name, workloads[w].what);
    printf("  %-16s %d services in %d layers, each depending on all of the layer below:\n"
           "  %-16s register, start (ready at once), stop; CPU time, best (median)\n",
           "services_graph", BENCH_SVC_LAYERS * BENCH_SVC_WIDTH, BENCH_SVC_LAYERS, "");
    printf("\nRESULT");
    for (size_t w = 0; w < nw; w++)
        printf(" %s=%.0f/%.0f=%.3f", workloads[w].name, best[0][w], best[1][w],
               best[0][w] / best[1][w]);
    printf("\nRESULT_BGLOOP services_graph_ms=%.3f\n", svc_best);
    return 0;
}
