/* loop.c - loop lifetime, the iteration's three steps (prepare, wait,
 * dispatch) and the entry points composed of them, budget, embedding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "loop-internal.h"

#ifdef _WIN32
uint64_t bgl_monotonic_ns(void)
{
    /* The performance counter: monotonic, and its frequency is fixed at
     * boot.  Split so that counts * 1e9 cannot overflow. */
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (!freq.QuadPart)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    uint64_t f = (uint64_t)freq.QuadPart, c = (uint64_t)now.QuadPart;
    return c / f * 1000000000u + c % f * 1000000000u / f;
}
#else
uint64_t bgl_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

uint64_t bgli_loop_clock(const bgl_loop *loop)
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
    bgli_queue_init(&loop->queue);
    bgli_heap_init(&loop->heap);
    loop->budget = -1;
    loop->epfd = -1;
    loop->wake_rfd = loop->wake_wfd = (bgl_fd)-1;
    loop->now = bgl_monotonic_ns();
    bgli_signals_init(loop);

    int r = 0;
#ifdef _WIN32
    /* Sockets are Winsock's: it is started for as long as a loop lives. */
    if ((r = bgli_winsock_up()) < 0) {
        free(loop);
        return r;
    }
#endif
    r = bgli_backend_init(loop);
    if (r < 0)
        goto fail;
    r = bgli_threadsafe_init(loop);
    if (r < 0) {
        bgli_backend_free(loop);
        free(loop->fdtab);
        goto fail;
    }
    *out = loop;
    return 0;

fail:
#ifdef _WIN32
    bgli_winsock_down();
#endif
    free(loop);
    return r;
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
    bgli_mutex_lock(&loop->ts_lock);
    loop->freeing = 1;
    bgli_mutex_unlock(&loop->ts_lock);
    /* Only call nodes can be left in the queue now: give their owners the
     * userdata back. */
    bgl_node *n;
    while ((n = bgli_queue_first(&loop->queue))) {
        bgli_loop_dequeue(loop, n);
        bgl_call *c = (bgl_call *)n;
        if (c->discard)
            c->discard(c->userdata);
        free(c);
    }
    bgli_threadsafe_free(loop);
    bgli_signals_free(loop);
    bgli_backend_free(loop);
    bgli_calls_free_all(loop);
    bgli_heap_free(&loop->heap);
    free(loop->fdtab);
    free(loop);
#ifdef _WIN32
    bgli_winsock_down();
#endif
    return 0;
}

void bgli_loop_io_ready(bgl_loop *loop, bgl_io *io, unsigned revents)
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
        bgli_loop_enqueue(loop, &io->node);
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
        bgli_call_recycle(loop, c);
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

/* Run what is queued now, stopping at the budget (< 0: none).  Returns the
 * number of callbacks run; *spent gets the loop-clock time from the start of
 * the first callback to the end of the last one (only measured with a
 * budget): waiting and collecting never count against a budget. */
static int run_queue(bgl_loop *loop, int64_t budget, int64_t *spent)
{
    /* The marker ends this iteration's share of the queue: whatever is
     * queued by the callbacks lands behind it and waits. */
    bgl_node marker;
    marker.kind = BGL_NODE_SENTINEL;
    bgli_queue_push(&loop->queue, &marker);

    uint64_t start = budget >= 0 ? bgli_loop_clock(loop) : 0;
    int count = 0;
    *spent = 0;
    loop->dispatching = 1;
    for (;;) {
        bgl_node *n = loop->queue.next;
        if (n == &marker)
            break;
        bgli_loop_dequeue(loop, n);
        int ran = dispatch_node(loop, n);
        count += ran;
        if (ran && budget >= 0) {
            *spent = (int64_t)(bgli_loop_clock(loop) - start);
            if (*spent >= budget) {
                if (loop->queue.next != &marker)
                    loop->stats.budget_exhausted++;
                break;
            }
        }
    }
    loop->dispatching = 0;
    bgli_queue_unlink(&marker);
    loop->stats.dispatched += (uint64_t)count;
    return count;
}

/* Nanoseconds from the clock's current time until the earliest timer (0 if
 * overdue), or -1 if no timer is armed.  A deadline further away than
 * INT64_MAX ns (a timer armed for "never") saturates instead of wrapping to
 * a negative value, which would mean "block forever". */
static int64_t until_earliest_timer(bgl_loop *loop)
{
    const bgl_heap_entry *top = bgli_heap_top(&loop->heap);
    if (!top)
        return -1;
    uint64_t now = bgli_loop_clock(loop);
    if (top->deadline <= now)
        return 0;
    uint64_t until = top->deadline - now;
    return until > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)until;
}

/* Work that needs no wait: queued callbacks (ready I/O included) or a
 * wakeup or signal descriptor that a wait found readable. */
static int ready_now(const bgl_loop *loop)
{
    return loop->queued || loop->wake_ready || loop->sig_ready;
}

/* -EINVAL, -EBUSY (from a callback, or while the loop is freed) or 0. */
static int check_idle(const bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return loop->dispatching || loop->freeing ? -EBUSY : 0;
}

/* The smaller of two budgets; negative means "no limit". */
static int64_t min_budget(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* ---- the three steps ----------------------------------------------------- */

/* How long the backend may block: not at all if work is ready, never past
 * the earliest timer, at most `timeout` (< 0: no limit). */
static int64_t wait_bound(bgl_loop *loop, int64_t timeout)
{
    if (timeout == 0 || ready_now(loop))
        return 0;
    int64_t until = until_earliest_timer(loop);
    if (until < 0)
        return timeout;
    return timeout < 0 || until < timeout ? until : timeout;
}

static int wait_step(bgl_loop *loop, int64_t timeout)
{
    int64_t t = wait_bound(loop, timeout);
    int r = bgli_backend_poll(loop, t);
    if (r < 0)
        return r;
    if (r > 0 && t != 0)
        loop->stats.wakeups++;
    return ready_now(loop) || until_earliest_timer(loop) == 0;
}

/* wait_step(), resumed after a signal interrupted it for what is left of
 * the timeout: the entry points that own the whole iteration hide -EINTR
 * (a signal that has a source left its descriptor readable: nothing is
 * lost). */
static int wait_resuming(bgl_loop *loop, int64_t timeout)
{
    uint64_t deadline = 0;
    if (timeout > 0) {
        uint64_t now = bgl_monotonic_ns();
        deadline = (uint64_t)timeout > UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)timeout;
    }
    for (;;) {
        int r = wait_step(loop, timeout);
        if (r != -EINTR)
            return r;
        if (timeout > 0) {
            uint64_t now = bgl_monotonic_ns();
            uint64_t left = now >= deadline ? 0 : deadline - now;
            timeout = left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
        }
    }
}

/* Collect into the queue (I/O was queued by the wait), then run it. */
static int dispatch_step(bgl_loop *loop, int64_t budget, int64_t *spent)
{
    loop->now = bgli_loop_clock(loop);
    bgli_timers_collect(loop);
    if (loop->wake_ready) {
        bgli_threadsafe_collect(loop);
#ifdef _WIN32
        /* Console events arrive as wakeups (see signal-win.c). */
        if (loop->sig_pending)
            loop->sig_ready = 1;
#endif
    }
    if (loop->sig_ready)
        bgli_signals_collect(loop);
    int n = run_queue(loop, min_budget(budget, loop->budget), spent);
    loop->stats.iterations++;
    return n;
}

static int take_stop(bgl_loop *loop, int *code)
{
    if (!loop->stop_requested)
        return 0;
    loop->stop_requested = 0;
    if (code)
        *code = loop->exit_code;
    return 1;
}

int bgl_loop_prepare(bgl_loop *loop, int64_t *timeout_ns)
{
    int r = check_idle(loop);
    if (r < 0)
        return r;
    if (!timeout_ns)
        return -EINVAL;
    *timeout_ns = ready_now(loop) ? 0 : until_earliest_timer(loop);
    return *timeout_ns == 0;
}

int bgl_loop_wait(bgl_loop *loop, int64_t timeout_ns)
{
    int r = check_idle(loop);
    return r < 0 ? r : wait_step(loop, timeout_ns);
}

int bgl_loop_dispatch(bgl_loop *loop, int64_t budget_ns)
{
    int r = check_idle(loop);
    if (r < 0)
        return r;
    if (budget_ns == 0)
        return -EINVAL;
    int64_t spent;
    return dispatch_step(loop, budget_ns, &spent);
}

int bgl_loop_take_stop(bgl_loop *loop, int *code)
{
    if (!loop)
        return -EINVAL;
    return take_stop(loop, code);
}

/* ---- the entry points composed of them ------------------------------------ */

int bgl_loop_run_once(bgl_loop *loop, int64_t timeout_ns)
{
    int r = check_idle(loop);
    if (r < 0)
        return r;
    r = wait_resuming(loop, timeout_ns);
    if (r < 0)
        return r;
    int64_t spent;
    return dispatch_step(loop, -1, &spent);
}

int bgl_loop_kick(bgl_loop *loop, int64_t timeout_ns, int64_t budget_ns)
{
    int r = check_idle(loop);
    if (r < 0)
        return r;
    if (budget_ns == 0)
        return -EINVAL;
    r = wait_resuming(loop, timeout_ns);
    if (r < 0)
        return r;
    int total = 0;
    for (;;) {
        unsigned stops = loop->stop_calls;
        int64_t spent;
        /* The kick's remaining budget also bounds each iteration, so one
         * busy iteration cannot overrun the host's slice. */
        int n = dispatch_step(loop, budget_ns, &spent);
        total += n;
        if (n == 0 || loop->stop_calls != stops)
            break;
        if (budget_ns > 0 && (budget_ns -= spent) <= 0)
            break;
        /* Callbacks ran, so the count is what to report; a backend error
         * here recurs at the next wait. */
        if (wait_resuming(loop, 0) <= 0)
            break;
    }
    return total;
}

static int has_work(const bgl_loop *loop)
{
    return ready_now(loop) || loop->heap.len || loop->io_active || loop->signal_count ||
           loop->holds;
}

int bgl_loop_run(bgl_loop *loop)
{
    int r = check_idle(loop);
    if (r < 0)
        return r;
    for (;;) {
        int stopping = loop->stop_requested;
        if (!stopping && !has_work(loop))
            return 0;
        /* A stop requested between iterations still gets one (non-blocking)
         * iteration, as asyncio's stop() before run_forever() does. */
        r = wait_resuming(loop, stopping ? 0 : -1);
        if (r < 0)
            return r;
        int64_t spent;
        dispatch_step(loop, -1, &spent);
        int code;
        if (take_stop(loop, &code))
            return code;
    }
}

int bgl_loop_stop(bgl_loop *loop, int code)
{
    if (!loop)
        return -EINVAL;
    loop->stop_requested = 1;
    loop->stop_calls++;
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
    return bgli_backend_fd(loop);
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
    loop->now = bgli_loop_clock(loop);
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
    loop->now = bgli_loop_clock(loop);
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
