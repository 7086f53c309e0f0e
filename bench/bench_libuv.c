/* bench_libuv.c - the benchmark workloads on libuv (see bench.h).
 *
 * libuv has no "call soon" queue.  The closest equivalent is an idle handle:
 * its callback runs once per loop iteration, after timers and before the
 * poll, which it makes non-blocking - the same place and cost as bgloop's
 * deferred calls.  A one-shot call is modelled as start + stop: the callback
 * stops its handle and re-starts it to schedule the next call, which is the
 * queue insert/remove that bgl_loop_call_soon() does.  uv_async would add an
 * eventfd write per call and a zero uv_timer a heap operation: both would be
 * unfair to libuv.
 *
 * I/O uses uv_poll (readiness, the application reads and writes itself), as
 * bgl_io does; uv_read_start would add libuv's buffer allocation callbacks.
 */
#include "bench.h"

#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Close every handle and the loop; libuv needs one more run for the closes. */
static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void loop_close(uv_loop_t *loop)
{
    uv_walk(loop, close_walk_cb, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

/* ---- callbacks: chain ---------------------------------------------------- */

struct chain {
    long count, n;
};

static void chain_cb(uv_idle_t *h)
{
    struct chain *c = h->data;
    uv_idle_stop(h);
    if (++c->count < c->n)
        uv_idle_start(h, chain_cb);
}

int64_t uv_bench_chain(long n)
{
    struct chain c = {.n = n};
    uv_loop_t loop;
    uv_idle_t idle;
    if (uv_loop_init(&loop) < 0)
        return -ENOMEM;
    uv_idle_init(&loop, &idle);
    idle.data = &c;
    int64_t t0 = bench_now_ns();
    uv_idle_start(&idle, chain_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t dt = bench_now_ns() - t0;
    loop_close(&loop);
    return c.count == n ? dt : -EPROTO;
}

/* ---- callbacks: batches -------------------------------------------------- */

struct batch {
    long count, n;
    uv_idle_t idle[BENCH_BATCH];
};

static void batch_cb(uv_idle_t *h)
{
    struct batch *b = h->data;
    uv_idle_stop(h);
    /* the last callback of a batch queues the next batch */
    if (++b->count % BENCH_BATCH == 0 && b->count < b->n)
        for (int i = 0; i < BENCH_BATCH; i++)
            uv_idle_start(&b->idle[i], batch_cb);
}

int64_t uv_bench_batch(long n)
{
    struct batch *b = calloc(1, sizeof *b);
    uv_loop_t loop;
    if (b == NULL || uv_loop_init(&loop) < 0) {
        free(b);
        return -ENOMEM;
    }
    b->n = n;
    for (int i = 0; i < BENCH_BATCH; i++) {
        uv_idle_init(&loop, &b->idle[i]);
        b->idle[i].data = b;
    }
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < BENCH_BATCH; i++)
        uv_idle_start(&b->idle[i], batch_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t dt = bench_now_ns() - t0;
    loop_close(&loop);
    long count = b->count;
    free(b);
    return count == n ? dt : -EPROTO;
}

/* ---- timers -------------------------------------------------------------- */

static long timers_fired;

static void timer_cb(uv_timer_t *h)
{
    (void)h;
    timers_fired++;
}

int64_t uv_bench_timers(long n)
{
    uv_loop_t loop;
    uv_timer_t *t = calloc(BENCH_TIMERS, sizeof *t);
    if (t == NULL || uv_loop_init(&loop) < 0) {
        free(t);
        return -ENOMEM;
    }
    for (long i = 0; i < BENCH_TIMERS; i++)
        uv_timer_init(&loop, &t[i]);
    timers_fired = 0;

    long rounds = n / BENCH_TIMERS, expect = 0;
    int64_t t0 = bench_now_ns();
    for (long round = 0; round < rounds; round++) {
        /* same slots, order and deadlines (ms) as bench_bgloop.c */
        for (long i = 0; i < BENCH_TIMERS; i++) {
            long j = i % 2 ? bench_far_key(i) : i;
            uv_timer_start(&t[j], timer_cb, j % 2 ? (uint64_t)(1000 + j) : 0, 0);
        }
        for (long i = 1; i < BENCH_TIMERS; i += 2)
            uv_timer_stop(&t[i]);
        expect += BENCH_TIMERS / 2;
        while (timers_fired < expect)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    int64_t dt = bench_now_ns() - t0;
    loop_close(&loop);
    free(t);
    return timers_fired == rounds * (BENCH_TIMERS / 2) ? dt : -EPROTO;
}

/* ---- socketpair ping-pong ------------------------------------------------ */

struct pingpong {
    long count, n;
    int err;
    uv_poll_t poll[2];
};

static void pp_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct pingpong *pp = h->data;
    int fd;
    char b;
    if (status < 0 || uv_fileno((uv_handle_t *)h, &fd) < 0 || read(fd, &b, 1) != 1) {
        pp->err = -EIO;
        uv_stop(h->loop);
        return;
    }
    if (++pp->count >= pp->n) {
        uv_stop(h->loop);
        return;
    }
    if (write(fd, &b, 1) != 1) { /* to the other end */
        pp->err = -EIO;
        uv_stop(h->loop);
    }
}

int64_t uv_bench_pingpong(long n)
{
    struct pingpong pp = {.n = n};
    uv_loop_t loop;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    if (uv_loop_init(&loop) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        uv_poll_init(&loop, &pp.poll[i], fds[i]);
        pp.poll[i].data = &pp;
        uv_poll_start(&pp.poll[i], UV_READABLE, pp_cb);
    }
    int64_t t0 = bench_now_ns();
    int r = write(fds[0], "x", 1) == 1 ? 0 : -EIO;
    if (r == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    int64_t dt = bench_now_ns() - t0;
    loop_close(&loop);
    close(fds[0]);
    close(fds[1]);
    if (r < 0 || pp.err < 0)
        return r < 0 ? r : pp.err;
    return pp.count == n ? dt : -EPROTO;
}
