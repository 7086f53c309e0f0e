/* bench_bgloop.c - the benchmark workloads on libbgloop (see bench.h). */
#include "bench.h"

#include <bgloop/bgloop.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- callbacks: chain ---------------------------------------------------- */

struct chain {
    bgl_loop *loop;
    long count, n;
    int err;
};

static void chain_cb(void *userdata)
{
    struct chain *c = userdata;
    if (++c->count < c->n) {
        int r = bgl_loop_call_soon(c->loop, chain_cb, c);
        if (r < 0)
            c->err = r;
    }
}

int64_t bgl_bench_chain(long n)
{
    struct chain c = {.n = n};
    int r = bgl_loop_new(&c.loop);
    if (r < 0)
        return r;
    int64_t t0 = bench_now_ns();
    r = bgl_loop_call_soon(c.loop, chain_cb, &c);
    if (r == 0)
        r = bgl_loop_run(c.loop); /* returns when the chain ends: no work left */
    int64_t dt = bench_now_ns() - t0;
    bgl_loop_free(c.loop);
    if (r < 0 || c.err < 0)
        return r < 0 ? r : c.err;
    return c.count == n ? dt : -EPROTO;
}

/* ---- callbacks: batches -------------------------------------------------- */

static void batch_cb(void *userdata)
{
    struct chain *c = userdata;
    /* the last callback of a batch queues the next batch */
    if (++c->count % BENCH_BATCH == 0 && c->count < c->n) {
        for (int i = 0; i < BENCH_BATCH; i++) {
            int r = bgl_loop_call_soon(c->loop, batch_cb, c);
            if (r < 0)
                c->err = r;
        }
    }
}

int64_t bgl_bench_batch(long n)
{
    struct chain c = {.n = n};
    int r = bgl_loop_new(&c.loop);
    if (r < 0)
        return r;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < BENCH_BATCH && r == 0; i++)
        r = bgl_loop_call_soon(c.loop, batch_cb, &c);
    if (r == 0)
        r = bgl_loop_run(c.loop);
    int64_t dt = bench_now_ns() - t0;
    bgl_loop_free(c.loop);
    if (r < 0 || c.err < 0)
        return r < 0 ? r : c.err;
    return c.count == n ? dt : -EPROTO;
}

/* ---- timers -------------------------------------------------------------- */

struct timers {
    long fired;
};

static void timer_cb(bgl_timer *timer, void *userdata)
{
    (void)timer;
    ((struct timers *)userdata)->fired++;
}

int64_t bgl_bench_timers(long n)
{
    struct timers st = {0};
    bgl_loop *loop;
    bgl_timer **t = calloc(BENCH_TIMERS, sizeof *t);
    int r = t ? bgl_loop_new(&loop) : -ENOMEM;
    if (r < 0) {
        free(t);
        return r;
    }
    for (long i = 0; i < BENCH_TIMERS && r == 0; i++)
        r = bgl_timer_new(loop, timer_cb, &st, &t[i]);

    long rounds = n / BENCH_TIMERS, expect = 0;
    int64_t t0 = bench_now_ns();
    for (long round = 0; round < rounds && r == 0; round++) {
        /* even slots: due now; odd slots: 1 s and more away, in a
         * scrambled order (same deadlines, in ms, as the libuv side) */
        for (long i = 0; i < BENCH_TIMERS && r == 0; i++) {
            long j = i % 2 ? bench_far_key(i) : i; /* odd i -> odd j */
            uint64_t after = j % 2 ? (uint64_t)(1000 + j) * 1000000u : 0;
            r = bgl_timer_start(t[j], after, 0);
        }
        for (long i = 1; i < BENCH_TIMERS && r == 0; i += 2)
            r = bgl_timer_stop(t[i]);
        expect += BENCH_TIMERS / 2;
        while (r >= 0 && st.fired < expect)
            r = bgl_loop_run_once(loop, 0);
        if (r > 0)
            r = 0; /* a count of callbacks, not an error */
    }
    int64_t dt = bench_now_ns() - t0;
    for (long i = 0; i < BENCH_TIMERS; i++)
        if (t[i])
            bgl_timer_free(t[i]);
    free(t);
    bgl_loop_free(loop);
    if (r < 0)
        return r;
    return st.fired == rounds * (BENCH_TIMERS / 2) ? dt : -EPROTO;
}

/* ---- socketpair ping-pong ------------------------------------------------ */

struct pingpong {
    bgl_loop *loop;
    bgl_io *io[2];
    long count, n;
    int err;
};

static void pp_cb(bgl_io *io, int fd, unsigned revents, void *userdata)
{
    (void)io;
    (void)revents;
    struct pingpong *pp = userdata;
    char b;
    if (read(fd, &b, 1) != 1) {
        pp->err = -EIO;
        bgl_loop_stop(pp->loop, 1);
        return;
    }
    if (++pp->count >= pp->n) {
        bgl_loop_stop(pp->loop, 0);
        return;
    }
    if (write(fd, &b, 1) != 1) { /* to the other end */
        pp->err = -EIO;
        bgl_loop_stop(pp->loop, 1);
    }
}

int64_t bgl_bench_pingpong(long n)
{
    struct pingpong pp = {.n = n};
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    int r = bgl_loop_new(&pp.loop);
    for (int i = 0; i < 2 && r == 0; i++)
        r = bgl_io_new(pp.loop, fds[i], BGL_IO_READ, pp_cb, &pp, &pp.io[i]);
    int64_t t0 = bench_now_ns();
    if (r == 0)
        r = write(fds[0], "x", 1) == 1 ? bgl_loop_run(pp.loop) : -EIO;
    int64_t dt = bench_now_ns() - t0;
    for (int i = 0; i < 2; i++)
        if (pp.io[i])
            bgl_io_free(pp.io[i]);
    if (pp.loop)
        bgl_loop_free(pp.loop);
    close(fds[0]);
    close(fds[1]);
    if (r < 0 || pp.err < 0)
        return r < 0 ? r : pp.err;
    return pp.count == n ? dt : -EPROTO;
}

/* ---- services: a 20-layer diamond ------------------------------------------ */

struct svc_bench {
    long started, stopped;
};

static int svcb_start(bgl_service *svc, void *userdata)
{
    ((struct svc_bench *)userdata)->started++;
    return bgl_service_ready(svc);
}

static void svcb_stop(bgl_service *svc, void *userdata)
{
    ((struct svc_bench *)userdata)->stopped++;
    bgl_service_exited(svc, 0, NULL);
}

/* Run non-blocking iterations until the manager has nothing left to do. */
static int svcb_settle(bgl_loop *loop)
{
    for (long i = 0; i < 1000000; i++) {
        int r = bgl_loop_run_once(loop, 0);
        if (r <= 0)
            return r;
    }
    return -ETIMEDOUT;
}

int64_t bgl_bench_services(void)
{
    enum { N = BENCH_SVC_LAYERS * BENCH_SVC_WIDTH };
    static char names[N][16];
    static const char *deps[BENCH_SVC_LAYERS][BENCH_SVC_WIDTH + 1];
    for (int i = 0; i < N; i++)
        snprintf(names[i], sizeof names[i], "s%d_%d", i / BENCH_SVC_WIDTH, i % BENCH_SVC_WIDTH);
    for (int l = 0; l < BENCH_SVC_LAYERS; l++) {
        for (int k = 0; k < BENCH_SVC_WIDTH; k++)
            deps[l][k] = names[l * BENCH_SVC_WIDTH + k];
        deps[l][BENCH_SVC_WIDTH] = NULL;
    }
    struct svc_bench sb = {0};
    bgl_loop *loop = NULL;
    bgl_services *mgr = NULL;
    int r = bgl_loop_new(&loop);
    if (r < 0)
        return r;
    r = bgl_services_new(loop, &mgr);
    const bgl_service_hooks hooks = {.start = svcb_start, .stop = svcb_stop};
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < N && r == 0; i++) {
        int layer = i / BENCH_SVC_WIDTH;
        bgl_service_config cfg;
        bgl_service_config_init(&cfg);
        cfg.name = names[i];
        cfg.owner = "bench";
        cfg.depends_on = layer ? deps[layer - 1] : NULL;
        r = bgl_service_add(mgr, &cfg, &hooks, &sb, NULL);
    }
    if (r == 0)
        r = bgl_services_start(mgr, NULL);
    if (r == 0)
        r = svcb_settle(loop);
    int all_up = r == 0 && sb.started == N && bgl_services_active(mgr, NULL) == N;
    if (r == 0)
        r = bgl_services_stop(mgr, NULL);
    if (r == 0)
        r = svcb_settle(loop);
    int64_t dt = bench_now_ns() - t0;
    int all_down = r == 0 && sb.stopped == N && bgl_services_active(mgr, NULL) == 0;
    if (mgr && bgl_services_free(mgr) < 0 && r == 0)
        r = -EBUSY;
    bgl_loop_free(loop);
    if (r < 0)
        return r;
    return all_up && all_down ? dt : -EPROTO;
}
