/* loop.c - loop lifetime, the iteration, run/kick/stop, budget, embedding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "loop-internal.h"

uint64_t bgl_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bgl_loop_clock(const bgl_loop *loop)
{
    return loop->clock ? loop->clock(loop->clock_ud) : bgl_monotonic_ns();
}

int bgl_loop_new(bgl_loop **out)
{
    if (!out)
        return -EINVAL;
    bgl_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    bgl_queue_init(&loop->queue);
    bgl_heap_init(&loop->heap);
    loop->budget = -1;
    loop->epfd = -1;
    loop->wake_rfd = loop->wake_wfd = -1;
    loop->sig_rfd = loop->sig_wfd = -1;
    loop->now = bgl_monotonic_ns();
    bgl_signals_init(loop);

    int r = bgl_backend_init(loop);
    if (r < 0) {
        free(loop);
        return r;
    }
    r = bgl_threadsafe_init(loop);
    if (r < 0) {
        bgl_backend_free(loop);
        free(loop->fdtab);
        free(loop);
        return r;
    }
    *out = loop;
    return 0;
}

int bgl_loop_free(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->dispatching || loop->freeing || loop->io_count || loop->timer_count ||
        loop->signal_count)
        return -EBUSY;
    /* From here on the discard functions may run arbitrary code (the Python
     * binding drops references): nothing new may attach to the loop. */
    pthread_mutex_lock(&loop->ts_lock);
    loop->freeing = 1;
    pthread_mutex_unlock(&loop->ts_lock);
    /* Only call nodes can be left in the queue now: give their owners the
     * userdata back. */
    bgl_node *n;
    while ((n = bgl_queue_first(&loop->queue))) {
        bgl_loop_dequeue(loop, n);
        bgl_call *c = (bgl_call *)n;
        if (c->discard)
            c->discard(c->userdata);
        free(c);
    }
    bgl_threadsafe_free(loop);
    bgl_signals_free(loop);
    bgl_backend_free(loop);
    bgl_calls_free_all(loop);
    bgl_heap_free(&loop->heap);
    free(loop->fdtab);
    free(loop);
    return 0;
}

void bgl_loop_io_ready(bgl_loop *loop, bgl_io *io, unsigned revents)
{
    if (io->internal) {
        /* Internal descriptors are drained at collect, in the documented
         * order (I/O, timers, thread-safe calls, signals). */
        if (io == &loop->wake_io)
            loop->wake_ready = 1;
        else
            loop->sig_ready = 1;
        return;
    }
    /* Merge into a watcher that is still queued (budget leftovers): it must
     * never be queued twice. */
    io->pending |= revents;
    if (!io->node.queued)
        bgl_loop_enqueue(loop, &io->node);
}

/* Run one queued node.  Returns 1 if a user callback ran.  The node is
 * already unlinked; nothing here touches the source after its callback
 * returns, because the callback may have freed it. */
static int dispatch_node(bgl_loop *loop, bgl_node *n)
{
    switch (n->kind) {
    case BGL_NODE_CALL:
    case BGL_NODE_TSCALL: {
        bgl_call *c = (bgl_call *)n;
        bgl_callback cb = c->cb;
        void *ud = c->userdata;
        /* Recycle first: the callback may schedule again and reuse it. */
        bgl_call_recycle(loop, c);
        cb(ud);
        return 1;
    }
    case BGL_NODE_IO: {
        bgl_io *io = (bgl_io *)n;
        unsigned rev = io->pending & (io->events | BGL_IO_ERROR | BGL_IO_HUP);
        io->pending = 0;
        if (!rev)
            return 0; /* interest dropped since it became ready */
        io->cb(io, io->fd, rev, io->userdata);
        return 1;
    }
    case BGL_NODE_TIMER: {
        bgl_timer *t = (bgl_timer *)n;
        t->cb(t, t->userdata);
        return 1;
    }
    case BGL_NODE_SIGNAL: {
        bgl_signal *s = (bgl_signal *)n;
        s->cb(s, s->signo, s->userdata);
        return 1;
    }
    default:
        return 0;
    }
}

/* Dispatch what is queued now, stopping at the budget.  Returns the number
 * of callbacks run; *spent gets the clock time used (only measured when a
 * budget is set). */
static int dispatch(bgl_loop *loop, int64_t budget, int64_t *spent)
{
    /* The marker ends this iteration's share of the queue: whatever is
     * queued by the callbacks lands behind it and waits. */
    bgl_node marker;
    marker.kind = BGL_NODE_SENTINEL;
    bgl_queue_push(&loop->queue, &marker);

    uint64_t start = budget >= 0 ? bgl_loop_clock(loop) : 0;
    int count = 0;
    *spent = 0;
    loop->dispatching = 1;
    for (;;) {
        bgl_node *n = loop->queue.next;
        if (n == &marker)
            break;
        bgl_loop_dequeue(loop, n);
        int ran = dispatch_node(loop, n);
        count += ran;
        if (ran && budget >= 0) {
            *spent = (int64_t)(bgl_loop_clock(loop) - start);
            if (*spent >= budget) {
                if (loop->queue.next != &marker)
                    loop->stats.budget_exhausted++;
                break;
            }
        }
    }
    loop->dispatching = 0;
    bgl_queue_unlink(&marker);
    loop->stats.dispatched += (uint64_t)count;
    return count;
}

/* Nanoseconds from the clock's current time until the earliest timer (0 if
 * overdue), or -1 if no timer is armed.  A deadline further away than
 * INT64_MAX ns (a timer armed for "never") saturates instead of wrapping to
 * a negative value, which would mean "block forever". */
static int64_t until_earliest_timer(bgl_loop *loop)
{
    const bgl_heap_entry *top = bgl_heap_top(&loop->heap);
    if (!top)
        return -1;
    uint64_t now = bgl_loop_clock(loop);
    if (top->deadline <= now)
        return 0;
    uint64_t until = top->deadline - now;
    return until > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)until;
}

/* Earliest timer deadline as a timeout from now, bounded by `timeout`. */
static int64_t poll_timeout(bgl_loop *loop, int64_t timeout)
{
    if (loop->queued || timeout == 0)
        return 0;
    int64_t until = until_earliest_timer(loop);
    if (until < 0)
        return timeout;
    if (timeout < 0 || until < timeout)
        return until;
    return timeout;
}

static int iterate(bgl_loop *loop, int64_t timeout, int64_t budget, int64_t *spent)
{
    int64_t t = poll_timeout(loop, timeout);
    int r = bgl_backend_poll(loop, t);
    *spent = 0;
    if (r < 0)
        return r;
    if (r > 0 && t != 0)
        loop->stats.wakeups++;
    loop->now = bgl_loop_clock(loop);

    bgl_timers_collect(loop);
    if (loop->wake_ready)
        bgl_threadsafe_collect(loop);
    if (loop->sig_ready)
        bgl_signals_collect(loop);

    int n = dispatch(loop, budget, spent);
    loop->stats.iterations++;
    return n;
}

int bgl_loop_run_once(bgl_loop *loop, int64_t timeout_ns)
{
    if (!loop)
        return -EINVAL;
    if (loop->dispatching || loop->freeing)
        return -EBUSY;
    int64_t spent;
    return iterate(loop, timeout_ns, loop->budget, &spent);
}

int bgl_loop_kick(bgl_loop *loop, int64_t timeout_ns, int64_t budget_ns)
{
    if (!loop || budget_ns == 0)
        return -EINVAL;
    if (loop->dispatching || loop->freeing)
        return -EBUSY;
    int total = 0;
    int64_t timeout = timeout_ns;
    for (;;) {
        /* The kick's remaining budget also bounds each iteration, so one
         * busy iteration cannot overrun the host's slice. */
        int64_t b = loop->budget;
        if (budget_ns > 0 && (b < 0 || b > budget_ns))
            b = budget_ns;
        int64_t spent;
        int n = iterate(loop, timeout, b, &spent);
        if (n < 0)
            return total ? total : n;
        total += n;
        if (n == 0)
            break;
        if (budget_ns > 0) {
            budget_ns -= spent;
            if (budget_ns <= 0)
                break;
        }
        timeout = 0;
    }
    return total;
}

static int has_work(const bgl_loop *loop)
{
    return loop->queued || loop->heap.len || loop->io_active || loop->signal_count ||
           loop->holds;
}

int bgl_loop_run(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->dispatching || loop->freeing)
        return -EBUSY;
    for (;;) {
        int stopping = loop->stop_requested;
        if (!stopping && !has_work(loop))
            return 0;
        int64_t spent;
        /* A stop requested between iterations still gets one (non-blocking)
         * iteration, as asyncio's stop() before run_forever() does. */
        int r = iterate(loop, stopping ? 0 : -1, loop->budget, &spent);
        if (r < 0)
            return r;
        if (loop->stop_requested) {
            loop->stop_requested = 0;
            return loop->exit_code;
        }
    }
}

int bgl_loop_stop(bgl_loop *loop, int code)
{
    if (!loop)
        return -EINVAL;
    loop->stop_requested = 1;
    loop->exit_code = code;
    return 0;
}

int bgl_loop_get_exit_code(const bgl_loop *loop, int *code)
{
    if (!loop || !code)
        return -EINVAL;
    *code = loop->exit_code;
    return 0;
}

int bgl_loop_set_budget(bgl_loop *loop, int64_t budget_ns)
{
    if (!loop || budget_ns == 0)
        return -EINVAL;
    loop->budget = budget_ns < 0 ? -1 : budget_ns;
    return 0;
}

int bgl_loop_hold(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    loop->holds++;
    return 0;
}

int bgl_loop_release(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (!loop->holds)
        return -EALREADY;
    loop->holds--;
    return 0;
}

int bgl_loop_get_fd(const bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return bgl_backend_fd(loop);
}

int bgl_loop_get_timeout(bgl_loop *loop, int64_t *timeout_ns)
{
    if (!loop || !timeout_ns)
        return -EINVAL;
    if (loop->queued) {
        *timeout_ns = 0;
        return 0;
    }
    *timeout_ns = until_earliest_timer(loop);
    return 0;
}

int bgl_loop_now(const bgl_loop *loop, uint64_t *now_ns)
{
    if (!loop || !now_ns)
        return -EINVAL;
    *now_ns = loop->now;
    return 0;
}

int bgl_loop_update_time(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    loop->now = bgl_loop_clock(loop);
    return 0;
}

int bgl_loop_set_clock(bgl_loop *loop, bgl_clock_fn clock, void *userdata)
{
    if (!loop)
        return -EINVAL;
    if (loop->heap.len)
        return -EBUSY;
    loop->clock = clock;
    loop->clock_ud = clock ? userdata : NULL;
    loop->now = bgl_loop_clock(loop);
    return 0;
}

int bgl_loop_get_stats(const bgl_loop *loop, bgl_loop_stats *stats)
{
    if (!loop || !stats)
        return -EINVAL;
    *stats = loop->stats;
    stats->io_watchers = loop->io_count;
    stats->timers_armed = loop->heap.len;
    stats->queued = loop->queued;
    return 0;
}
