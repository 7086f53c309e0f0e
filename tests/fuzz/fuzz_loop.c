/* fuzz_loop.c - libFuzzer harness of the loop: the input is a sequence of
 * operations on one loop (timers, I/O watchers on pipes and socketpairs,
 * deferred and thread-safe calls - also from other threads -, signals,
 * prepare/wait/dispatch, run_once, kick and run with small timeouts,
 * budgets, stop requests, holds), and every callback also takes its next
 * action from the input (touch other sources, stop the loop, spend time,
 * try re-entrant calls).  The loop runs on a settable clock, so an input
 * always replays the same way; real waits are at most 1 ms.
 *
 * Checked after each step and in each callback:
 *   - a timer fires only while armed, never before its deadline on the
 *     loop's clock, and the timers of one dispatch fire in deadline order;
 *     bgl_timer_is_active() and bgl_timer_get_deadline() agree with a model;
 *   - a freed or stopped source never fires; every callback's userdata is
 *     a live record;
 *   - I/O callbacks get only bits of their interest (plus error/hang-up) and
 *     only when the descriptor is ready; a readable watcher is dispatched by
 *     the next undisturbed run_once; so is a raised signal;
 *   - deferred calls run exactly once, in the order they were made; the
 *     thread-safe calls of each thread run in the order that thread made
 *     them; the calls left at bgl_loop_free() are discarded exactly once;
 *   - a dispatch never goes on once its budget is spent; a kick ends after
 *     the iteration that requested a stop; take_stop and run return the
 *     requested code; prepare's timeout matches the earliest timer;
 *   - every re-entrant step from a callback is -EBUSY;
 *   - at the end everything is freed (ASan's leak check) and no descriptor
 *     is left open. */
#include "fuzz-common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define T0 SEC
#define CLOCK_MAX (UINT64_C(1) << 62)

#define N_TIMERS 8
#define N_CHANS 5
#define N_CALLS 2048
#define N_SIGS 3
#define N_STREAMS 8
#define MAX_OPS 400

/* Signals nobody else in a libFuzzer process uses, whose default action
 * is harmless or never reached (a source exists whenever one is raised). */
static const int sig_nums[N_SIGS] = {SIGWINCH, SIGURG, SIGHUP};

typedef struct ftimer {
    bgl_timer *t;
    int armed;
    uint64_t deadline, repeat;
    unsigned fired;
} ftimer;

typedef struct fio {
    bgl_io *io;
    unsigned interest;
    unsigned fired;
    int expect;          /* readable before an undisturbed run_once */
    int stale;           /* drained while events may be queued for it */
} fio;

typedef struct fchan {
    int open;
    int sock;            /* socketpair, else pipe (end 0 reads, end 1 writes) */
    int fd[2];
    fio w[2];
} fchan;

enum { CALL_UNUSED, CALL_QUEUED, CALL_RAN, CALL_DISCARDED };

typedef struct fcall {
    int state;
    int stream;          /* 0: call_soon; 1: thread-safe from the loop thread;
                            2..: thread-safe from helper thread n */
    unsigned seq;
} fcall;

typedef struct fsig {
    bgl_signal *s;
    int raised;
    unsigned fired;
} fsig;

typedef struct world {
    fuzz_in in;
    bgl_loop *loop;
    fuzz_clock clk;
    ftimer timers[N_TIMERS];
    fchan chans[N_CHANS];
    fsig sigs[N_SIGS];
    fcall calls[N_CALLS];
    int n_calls;
    unsigned stream_next[N_STREAMS];   /* next seq a stream will make */
    unsigned stream_ran[N_STREAMS];    /* next seq a stream must run */
    int next_thread_stream;
    uint64_t cost;                     /* fake ns every callback spends */
    int64_t budget;                    /* bgl_loop_set_budget(), -1: none */
    int64_t step_budget;               /* the current step's own budget */
    int stepping;                      /* inside a step of the loop */
    int disturbed;                     /* a callback changed sources */
    int stop_pending, stop_code;
    int kick_stop_iter_set;
    uint64_t kick_stop_iter;
    int in_kick;
    int in_run;
    unsigned holds;
    /* timer order within one dispatch */
    uint64_t order_iter, order_last, order_be;
    int order_skip;
    int depth;                         /* nested callback actions */
} world;

static world W;

/* ---- models -------------------------------------------------------------- */

static uint64_t loop_now(void)
{
    uint64_t now = 0;
    MUST(bgl_loop_now(W.loop, &now));
    return now;
}

static bgl_loop_stats stats(void)
{
    bgl_loop_stats s;
    MUST(bgl_loop_get_stats(W.loop, &s));
    return s;
}

static void check_timers(void)
{
    for (int i = 0; i < N_TIMERS; i++) {
        ftimer *f = &W.timers[i];
        if (!f->t)
            continue;
        EXPECT(bgl_timer_is_active(f->t), f->armed);
        uint64_t d = 0;
        if (f->armed) {
            MUST(bgl_timer_get_deadline(f->t, &d));
            /* A repeating timer whose expiry is still queued (a dispatch
             * cut by its budget) already has its next deadline. */
            int ok = d == f->deadline ||
                     (f->repeat && d > f->deadline &&
                      (d == UINT64_MAX || (d - f->deadline) % f->repeat == 0));
            CHECK(ok, "timer %d: deadline %llu, model %llu", i, (unsigned long long)d,
                  (unsigned long long)f->deadline);
        } else {
            EXPECT(bgl_timer_get_deadline(f->t, &d), -ENOENT);
        }
    }
}

/* ---- callbacks ------------------------------------------------------------ */

static void action(int self_kind, void *self);

static void enter_cb(void)
{
    CHECK(W.stepping, "a callback ran outside a step of the loop");
    bgl_loop_stats s = stats();
    /* The kick must have ended with the iteration that asked to stop. */
    if (W.in_kick && W.kick_stop_iter_set)
        CHECK(s.iterations <= W.kick_stop_iter, "kick went on after a stop request");
    /* Budget: a dispatch never starts a callback once its budget is spent
     * (time moves only in callbacks, so the dispatch began at "now"). */
    int64_t b = W.step_budget;
    if (W.budget > 0 && (b < 0 || W.budget < b))
        b = W.budget;
    if (b > 0) {
        uint64_t spent = W.clk.now - loop_now();
        CHECK(spent < (uint64_t)b, "callback started after the budget (%lld) was spent (%llu)",
              (long long)b, (unsigned long long)spent);
    }
    if (W.clk.now + W.cost < CLOCK_MAX)
        W.clk.now += W.cost;
}

static void timer_cb(bgl_timer *t, void *ud)
{
    ftimer *f = ud;
    CHECK(f >= W.timers && f < W.timers + N_TIMERS, "timer userdata %p is not a record", ud);
    CHECK(f->t == t, "timer callback for a freed or foreign timer");
    CHECK(f->armed, "timer %d fired while stopped", (int)(f - W.timers));
    uint64_t now = loop_now();
    CHECK(f->deadline <= now, "timer %d fired early: deadline %llu, now %llu",
          (int)(f - W.timers), (unsigned long long)f->deadline, (unsigned long long)now);
    bgl_loop_stats s = stats();
    if (s.iterations != W.order_iter) {
        W.order_iter = s.iterations;
        W.order_last = 0;
        /* Expiries left over from a dispatch cut by its budget run first. */
        W.order_skip = s.budget_exhausted != W.order_be;
        W.order_be = s.budget_exhausted;
    }
    if (!W.order_skip)
        CHECK(f->deadline >= W.order_last, "timers out of deadline order: %llu after %llu",
              (unsigned long long)f->deadline, (unsigned long long)W.order_last);
    W.order_last = f->deadline;
    f->fired++;
    if (f->repeat) {
        uint64_t d = 0;
        MUST(bgl_timer_get_deadline(t, &d));
        CHECK(d > now || d == UINT64_MAX, "repeating timer re-armed in the past");
        CHECK(d == UINT64_MAX || (d - f->deadline) % f->repeat == 0,
              "repeating timer drifted: %llu from %llu by %llu", (unsigned long long)d,
              (unsigned long long)f->deadline, (unsigned long long)f->repeat);
        f->deadline = d;
    } else {
        f->armed = 0;
    }
    enter_cb();
    action(1, f);
}

static int fd_ready(int fd, short what)
{
    struct pollfd p = {.fd = fd, .events = what};
    int r;
    while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    return r > 0 ? p.revents : 0;
}

static void io_cb(bgl_io *io, int fd, unsigned revents, void *ud)
{
    fio *w = ud;
    fchan *c = NULL;
    int end = -1;
    for (int i = 0; i < N_CHANS; i++)
        for (int e = 0; e < 2; e++)
            if (&W.chans[i].w[e] == w) {
                c = &W.chans[i];
                end = e;
            }
    CHECK(c, "I/O userdata %p is not a record", ud);
    CHECK(w->io == io, "I/O callback for a freed or foreign watcher");
    CHECK(c->open && c->fd[end] == fd, "I/O callback with fd %d, watcher's is %d", fd, c->fd[end]);
    CHECK(revents, "I/O callback without events");
    unsigned allowed = w->interest | BGL_IO_ERROR | BGL_IO_HUP;
    CHECK(!(revents & ~allowed), "I/O callback got %#x, interest %#x", revents, w->interest);
    /* Events queued before a budget cut are delivered as collected, even
     * if the descriptor was drained meanwhile. */
    if ((revents & BGL_IO_READ) && !w->stale)
        CHECK(fd_ready(fd, POLLIN | POLLRDHUP) & (POLLIN | POLLRDHUP | POLLHUP | POLLERR),
              "READ reported on fd %d that is not readable", fd);
    if ((revents & BGL_IO_WRITE) && !w->stale)
        CHECK(fd_ready(fd, POLLOUT) & (POLLOUT | POLLHUP | POLLERR),
              "WRITE reported on fd %d that is not writable", fd);
    w->fired++;
    w->stale = 0;
    enter_cb();
    action(2, w);
}

static void call_cb(void *ud)
{
    fcall *c = ud;
    CHECK(c >= W.calls && c < W.calls + N_CALLS, "call userdata %p is not a record", ud);
    CHECK(c->state == CALL_QUEUED, "call %d ran in state %d", (int)(c - W.calls), c->state);
    c->state = CALL_RAN;
    CHECK(c->seq == W.stream_ran[c->stream], "stream %d: call %u ran, expected %u", c->stream,
          c->seq, W.stream_ran[c->stream]);
    W.stream_ran[c->stream]++;
    enter_cb();
    action(3, c);
}

static void call_discard(void *ud)
{
    fcall *c = ud;
    CHECK(c >= W.calls && c < W.calls + N_CALLS, "discard userdata %p is not a record", ud);
    CHECK(c->state == CALL_QUEUED, "call %d discarded in state %d", (int)(c - W.calls), c->state);
    c->state = CALL_DISCARDED;
}

static void sig_cb(bgl_signal *s, int signo, void *ud)
{
    fsig *f = ud;
    CHECK(f >= W.sigs && f < W.sigs + N_SIGS, "signal userdata %p is not a record", ud);
    CHECK(f->s == s && sig_nums[f - W.sigs] == signo, "signal callback for a freed source");
    f->raised = 0;
    f->fired++;
    enter_cb();
    action(4, f);
}

/* ---- operations shared by the steps and the callbacks ------------------ */

static fcall *new_call(int stream)
{
    if (W.n_calls >= N_CALLS)
        return NULL;
    fcall *c = &W.calls[W.n_calls++];
    c->state = CALL_QUEUED;
    c->stream = stream;
    c->seq = W.stream_next[stream]++;
    return c;
}

static void call_soon(void)
{
    fcall *c = new_call(0);
    if (c)
        MUST(bgl_loop_call_soon_full(W.loop, call_cb, c, call_discard));
}

static void call_threadsafe(void)
{
    fcall *c = new_call(1);
    if (c)
        MUST(bgl_loop_call_threadsafe(W.loop, call_cb, c, call_discard));
}

static const uint64_t after_table[] = {0, 1, 1000, MS, 3 * MS, 10 * MS, SEC, 3600 * SEC,
                                       UINT64_MAX / 2, UINT64_MAX};
static const uint64_t repeat_table[] = {0, 0, 0, 1, MS, 7 * MS, SEC, UINT64_MAX / 4};

static void timer_op(unsigned op, unsigned idx)
{
    ftimer *f = &W.timers[idx % N_TIMERS];
    if (!f->t) {
        if (op % 5 == 4)
            return;
        MUST(bgl_timer_new(W.loop, timer_cb, f, &f->t));
        f->armed = 0;
        return;
    }
    switch (op % 5) {
    case 0: { /* start, relative to the loop's cached time */
        uint64_t after = FIN_PICK(&W.in, after_table);
        if (fin_u8(&W.in) & 1)
            after += fin_u16(&W.in) * UINT64_C(1000);
        uint64_t now = loop_now();
        f->deadline = after > UINT64_MAX - now ? UINT64_MAX : now + after;
        f->repeat = FIN_PICK(&W.in, repeat_table);
        f->armed = 1;
        MUST(bgl_timer_start(f->t, after, f->repeat));
        break;
    }
    case 1: { /* start_at an absolute deadline, maybe in the past */
        uint64_t now = loop_now();
        uint64_t d = fin_u8(&W.in) & 1 ? now - (now > 5 * MS ? fin_below(&W.in, 5) * MS : 0)
                                       : now + fin_u16(&W.in) * UINT64_C(10000);
        f->deadline = d;
        f->repeat = FIN_PICK(&W.in, repeat_table);
        f->armed = 1;
        MUST(bgl_timer_start_at(f->t, d, f->repeat));
        break;
    }
    case 2:
        MUST(bgl_timer_stop(f->t));
        f->armed = 0;
        break;
    case 3: /* again, as it was */
        if (f->armed) {
            uint64_t now = loop_now();
            uint64_t after = f->deadline > now ? f->deadline - now : 0;
            f->deadline = now + after;
            MUST(bgl_timer_start(f->t, after, f->repeat));
        }
        break;
    case 4:
        MUST(bgl_timer_free(f->t));
        f->t = NULL;
        f->armed = 0;
        break;
    }
}

static void close_end(fchan *c, int end)
{
    if (c->fd[end] < 0)
        return;
    if (c->w[end].io) {
        MUST(bgl_io_free(c->w[end].io));
        c->w[end].io = NULL;
    }
    close(c->fd[end]);
    c->fd[end] = -1;
    if (c->fd[0] < 0 && c->fd[1] < 0)
        c->open = 0;
}

static void write_end(fchan *c, int end, size_t len)
{
    static const char buf[512] = {0};
    if (c->fd[end] < 0)
        return;
    /* A full buffer may make a WRITE already queued for it stale. */
    if (W.stepping || stats().queued)
        c->w[end].stale = 1;
    if (c->sock) {
        ssize_t r = send(c->fd[end], buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    } else if (end == 1 && c->fd[0] >= 0) {
        ssize_t r = write(c->fd[1], buf, len);
        (void)r;
    }
}

static void drain_end(fchan *c, int end)
{
    char buf[4096];
    if (c->fd[end] < 0)
        return;
    if (W.stepping || stats().queued)
        c->w[end].stale = 1;
    ssize_t r;
    while ((r = read(c->fd[end], buf, sizeof buf)) > 0) {
    }
}

static void io_op(unsigned op, unsigned idx)
{
    fchan *c = &W.chans[idx % N_CHANS];
    int end = (int)(idx / N_CHANS) & 1;
    if (!c->open) {
        c->sock = op & 1;
        int r = c->sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, c->fd)
                        : pipe2(c->fd, O_CLOEXEC | O_NONBLOCK);
        CHECK(r == 0, "cannot make a descriptor pair: %s", strerror(errno));
        c->open = 1;
        return;
    }
    fio *w = &c->w[end];
    switch (op % 7) {
    case 0: { /* watch */
        unsigned ev = fin_below(&W.in, 4);
        if (c->fd[end] < 0) {
            bgl_io *io;
            EXPECT(bgl_io_new(W.loop, 1000 + end, ev, io_cb, w, &io), -EBADF);
        } else if (w->io) {
            bgl_io *io;
            EXPECT(bgl_io_new(W.loop, c->fd[end], ev, io_cb, w, &io), -EEXIST);
        } else {
            MUST(bgl_io_new(W.loop, c->fd[end], ev, io_cb, w, &w->io));
            w->interest = ev;
            EXPECT(bgl_io_get_fd(w->io), c->fd[end]);
        }
        break;
    }
    case 1:
        if (w->io) {
            unsigned ev = fin_below(&W.in, 16);
            MUST(bgl_io_set_events(w->io, ev));
            w->interest = ev & (BGL_IO_READ | BGL_IO_WRITE);
            unsigned got = 99;
            MUST(bgl_io_get_events(w->io, &got));
            CHECK(got == w->interest, "interest %#x, model %#x", got, w->interest);
        }
        break;
    case 2:
        if (w->io) {
            MUST(bgl_io_free(w->io));
            w->io = NULL;
        }
        break;
    case 3:
        write_end(c, end, 1 + fin_below(&W.in, 512));
        break;
    case 4:
        drain_end(c, end);
        break;
    case 5: /* the peer goes away: EOF / hang-up for this end */
        close_end(c, !end);
        break;
    case 6:
        close_end(c, end);
        break;
    }
}

static void signal_op(unsigned op, unsigned idx)
{
    fsig *f = &W.sigs[idx % N_SIGS];
    int signo = sig_nums[idx % N_SIGS];
    switch (op % 3) {
    case 0:
        if (f->s) {
            bgl_signal *s;
            EXPECT(bgl_signal_new(W.loop, signo, sig_cb, f, &s), -EEXIST);
        } else {
            MUST(bgl_signal_new(W.loop, signo, sig_cb, f, &f->s));
            f->raised = 0;
        }
        break;
    case 1:
        if (f->s) {
            raise(signo);
            f->raised = 1;
        }
        break;
    case 2:
        if (f->s) {
            MUST(bgl_signal_free(f->s));
            f->s = NULL;
            f->raised = 0;
        }
        break;
    }
}

/* What a callback does next: nothing (most often), or something to the
 * loop from inside a dispatch. */
static void action(int self_kind, void *self)
{
    if (W.depth > 0 || !fin_left(&W.in))
        return;
    unsigned a = fin_u8(&W.in);
    if (a < 128)
        return;
    W.depth++;
    switch (a % 16) {
    case 0: call_soon(); break;
    case 1: call_threadsafe(); break;
    case 2: W.disturbed = 1; timer_op(fin_u8(&W.in), fin_u8(&W.in)); break;
    case 3: W.disturbed = 1; io_op(fin_u8(&W.in), fin_u8(&W.in)); break;
    case 4: W.disturbed = 1; signal_op(fin_u8(&W.in), fin_u8(&W.in)); break;
    case 5: {
        int code = (int)fin_below(&W.in, 100);
        MUST(bgl_loop_stop(W.loop, code));
        W.stop_pending = 1;
        W.stop_code = code;
        if (W.in_kick && !W.kick_stop_iter_set) {
            W.kick_stop_iter_set = 1;
            W.kick_stop_iter = stats().iterations;
        }
        break;
    }
    case 6: { /* a callback spends time */
        uint64_t t = fin_below(&W.in, 5) * MS;
        if (W.clk.now + t < CLOCK_MAX)
            W.clk.now += t;
        break;
    }
    case 7: { /* every re-entrant step is refused */
        int64_t t;
        EXPECT(bgl_loop_run_once(W.loop, 0), -EBUSY);
        EXPECT(bgl_loop_kick(W.loop, 0, -1), -EBUSY);
        EXPECT(bgl_loop_run(W.loop), -EBUSY);
        EXPECT(bgl_loop_prepare(W.loop, &t), -EBUSY);
        EXPECT(bgl_loop_wait(W.loop, 0), -EBUSY);
        EXPECT(bgl_loop_dispatch(W.loop, -1), -EBUSY);
        EXPECT(bgl_loop_free(W.loop), -EBUSY);
        break;
    }
    case 8: /* the callback frees its own source */
        W.disturbed = 1;
        if (self_kind == 1) {
            ftimer *f = self;
            MUST(bgl_timer_free(f->t));
            f->t = NULL;
            f->armed = 0;
        } else if (self_kind == 2) {
            fio *w = self;
            MUST(bgl_io_free(w->io));
            w->io = NULL;
        } else if (self_kind == 4) {
            fsig *f = self;
            MUST(bgl_signal_free(f->s));
            f->s = NULL;
            f->raised = 0;
        }
        break;
    case 9: { /* take the stop request from inside (not under run: it
               would then wait for more work) */
        if (W.in_run)
            break;
        int code = -1;
        int r = bgl_loop_take_stop(W.loop, &code);
        EXPECT(r, W.stop_pending);
        if (r)
            CHECK(code == W.stop_code, "take_stop: code %d, requested %d", code, W.stop_code);
        W.stop_pending = 0;
        break;
    }
    case 10: /* drain / write on our own descriptor */
        if (self_kind == 2) {
            for (int i = 0; i < N_CHANS; i++)
                for (int e = 0; e < 2; e++)
                    if (&W.chans[i].w[e] == self) {
                        if (a & 16)
                            drain_end(&W.chans[i], e);
                        else
                            write_end(&W.chans[i], e, 64);
                    }
        }
        break;
    default:
        break;
    }
    W.depth--;
}

/* ---- thread-safe calls from other threads -------------------------------- */

typedef struct tjob {
    fcall *calls[64];
    int n;
} tjob;

static void *thread_main(void *arg)
{
    tjob *j = arg;
    for (int i = 0; i < j->n; i++)
        MUST(bgl_loop_call_threadsafe(W.loop, call_cb, j->calls[i], call_discard));
    return NULL;
}

static int start_thread(pthread_t *th, tjob *j)
{
    if (W.next_thread_stream >= N_STREAMS)
        return 0;
    int stream = W.next_thread_stream++;
    j->n = 0;
    int want = 1 + (int)fin_below(&W.in, 64);
    for (int i = 0; i < want; i++) {
        fcall *c = new_call(stream);
        if (!c)
            break;
        j->calls[j->n++] = c;
    }
    return pthread_create(th, NULL, thread_main, j) == 0;
}

/* ---- steps of the loop ---------------------------------------------------- */

/* Mostly 0: a real wait with nothing ready sleeps (the epoll backend in
 * whole milliseconds), and time is the fuzzer's budget. */
static const int64_t timeout_table[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const int64_t budget_table[] = {-1, 1, 2, 5000, 50000, (int64_t)MS};

/* Mark what an undisturbed run_once must dispatch. */
static void expect_ready(void)
{
    for (int i = 0; i < N_CHANS; i++)
        for (int e = 0; e < 2; e++) {
            fchan *c = &W.chans[i];
            fio *w = &c->w[e];
            w->expect = 0;
            if (w->io && (w->interest & BGL_IO_READ) && c->fd[e] >= 0 &&
                (fd_ready(c->fd[e], POLLIN) & POLLIN)) {
                w->expect = 1;
                w->fired = 0;
            }
        }
    for (int i = 0; i < N_SIGS; i++)
        W.sigs[i].fired = 0;
}

static void check_ready(void)
{
    for (int i = 0; i < N_CHANS; i++)
        for (int e = 0; e < 2; e++) {
            fio *w = &W.chans[i].w[e];
            if (w->io && w->expect)
                CHECK(w->fired, "readable watcher (chan %d end %d) not dispatched", i, e);
            w->expect = 0;
        }
    for (int i = 0; i < N_SIGS; i++)
        if (W.sigs[i].s)
            CHECK(!W.sigs[i].raised, "raised signal %d not dispatched", sig_nums[i]);
}

static void begin_step(int64_t step_budget)
{
    W.stepping = 1;
    W.disturbed = 0;
    W.step_budget = step_budget;
}

static void end_step(void)
{
    W.stepping = 0;
    W.in_kick = 0;
    W.kick_stop_iter_set = 0;
}

static void loop_step(unsigned op)
{
    switch (op % 9) {
    case 0: { /* run_once, checking that nothing ready is left behind */
        int64_t t = FIN_PICK(&W.in, timeout_table);
        int check = W.budget < 0;
        uint64_t be = stats().budget_exhausted;
        if (check)
            expect_ready();
        begin_step(-1);
        int r = bgl_loop_run_once(W.loop, t);
        CHECK(r >= 0, "run_once: %s", bgl_strerror(r));
        end_step();
        if (check && !W.disturbed && stats().budget_exhausted == be)
            check_ready();
        break;
    }
    case 1: { /* prepare agrees with the model */
        int64_t t = 12345;
        int r = bgl_loop_prepare(W.loop, &t);
        CHECK(r == 0 || r == 1, "prepare: %d", r);
        if (r == 1) {
            CHECK(t == 0, "prepare: ready but timeout %lld", (long long)t);
        } else {
            uint64_t best = UINT64_MAX;
            int armed = 0;
            for (int i = 0; i < N_TIMERS; i++)
                if (W.timers[i].t && W.timers[i].armed) {
                    armed = 1;
                    if (W.timers[i].deadline < best)
                        best = W.timers[i].deadline;
                }
            if (!armed) {
                CHECK(t == -1, "prepare: no timer armed but timeout %lld", (long long)t);
            } else {
                CHECK(best > W.clk.now, "prepare: a timer is due but not ready");
                uint64_t until = best - W.clk.now;
                int64_t want = until > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)until;
                CHECK(t == want, "prepare: timeout %lld, earliest timer in %lld", (long long)t,
                      (long long)want);
            }
        }
        break;
    }
    case 2: { /* wait then dispatch, as a host does */
        int r = bgl_loop_wait(W.loop, FIN_PICK(&W.in, timeout_table));
        CHECK(r == 0 || r == 1 || r == -EINTR, "wait: %d", r);
        int64_t b = FIN_PICK(&W.in, budget_table);
        begin_step(b);
        r = bgl_loop_dispatch(W.loop, b);
        CHECK(r >= 0, "dispatch: %s", bgl_strerror(r));
        end_step();
        break;
    }
    case 3: { /* a kick with a budget: bounded even if work keeps coming */
        int64_t b = FIN_PICK(&W.in, budget_table);
        if (b < 0)
            b = 50000;
        /* Every callback spends time, so the budget ends the kick after
         * at most ~100 callbacks however much work keeps coming. */
        if (W.cost < 10000)
            W.cost = 10000;
        begin_step(b);
        W.in_kick = 1;
        int r = bgl_loop_kick(W.loop, FIN_PICK(&W.in, timeout_table), b);
        CHECK(r >= 0, "kick: %s", bgl_strerror(r));
        end_step();
        break;
    }
    case 4: /* run returns the code of a pending stop after one iteration */
        if (W.stop_pending) {
            begin_step(-1);
            W.in_run = 1;
            int r = bgl_loop_run(W.loop);
            W.in_run = 0;
            end_step();
            CHECK(r == W.stop_code, "run returned %d, stop code %d", r, W.stop_code);
            W.stop_pending = 0;
            EXPECT(bgl_loop_take_stop(W.loop, NULL), 0);
        } else {
            int code = (int)fin_below(&W.in, 100);
            MUST(bgl_loop_stop(W.loop, code));
            W.stop_pending = 1;
            W.stop_code = code;
        }
        break;
    case 5: {
        int code = -1;
        int r = bgl_loop_take_stop(W.loop, &code);
        EXPECT(r, W.stop_pending);
        if (r)
            CHECK(code == W.stop_code, "take_stop: %d, requested %d", code, W.stop_code);
        W.stop_pending = 0;
        break;
    }
    case 6: /* budgets, including refused ones */
        W.budget = FIN_PICK(&W.in, budget_table);
        MUST(bgl_loop_set_budget(W.loop, W.budget));
        EXPECT(bgl_loop_set_budget(W.loop, 0), -EINVAL);
        EXPECT(bgl_loop_dispatch(W.loop, 0), -EINVAL);
        EXPECT(bgl_loop_kick(W.loop, 0, 0), -EINVAL);
        break;
    case 7: /* time moves */
    {
        static const uint64_t jumps[] = {0, 1, 999, MS, 5 * MS, SEC, 90 * SEC};
        uint64_t j = FIN_PICK(&W.in, jumps);
        if (W.clk.now + j < CLOCK_MAX)
            W.clk.now += j;
        if (fin_u8(&W.in) & 1)
            MUST(bgl_loop_update_time(W.loop));
        static const uint64_t costs[] = {0, 1000, 10000, 100000};
        W.cost = FIN_PICK(&W.in, costs);
        break;
    }
    case 8: /* holds; the clock cannot change under armed timers */
        if (op & 16) {
            MUST(bgl_loop_hold(W.loop));
            W.holds++;
        } else {
            EXPECT(bgl_loop_release(W.loop), W.holds ? 0 : -EALREADY);
            if (W.holds)
                W.holds--;
        }
        EXPECT(bgl_loop_set_clock(W.loop, fuzz_clock_read, &W.clk),
               stats().timers_armed ? -EBUSY : 0);
        break;
    }
}

static void threads_step(unsigned op)
{
    pthread_t th;
    tjob job;
    if (!start_thread(&th, &job))
        return;
    if (op & 1) {
        /* concurrently with a short wait and dispatch */
        begin_step(-1);
        int r = bgl_loop_run_once(W.loop, FIN_PICK(&W.in, timeout_table));
        CHECK(r >= 0, "run_once: %s", bgl_strerror(r));
        end_step();
    }
    pthread_join(th, NULL);
}

/* ---- one input ------------------------------------------------------------- */

static void teardown(void)
{
    for (int i = 0; i < N_TIMERS; i++)
        if (W.timers[i].t)
            MUST(bgl_timer_free(W.timers[i].t));
    for (int i = 0; i < N_CHANS; i++) {
        close_end(&W.chans[i], 0);
        close_end(&W.chans[i], 1);
    }
    for (int i = 0; i < N_SIGS; i++)
        if (W.sigs[i].s)
            MUST(bgl_signal_free(W.sigs[i].s));
    MUST(bgl_loop_free(W.loop));
    for (int i = 0; i < W.n_calls; i++)
        CHECK(W.calls[i].state == CALL_RAN || W.calls[i].state == CALL_DISCARDED,
              "call %d neither ran nor was discarded (state %d)", i, W.calls[i].state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds_before = fuzz_count_fds();
    memset(&W, 0, sizeof W);
    W.in.p = data;
    W.in.n = size;
    W.budget = -1;
    W.step_budget = -1;
    W.next_thread_stream = 2;
    W.clk.now = T0;
    for (int i = 0; i < N_CHANS; i++)
        W.chans[i].fd[0] = W.chans[i].fd[1] = -1;
    MUST(bgl_loop_new(&W.loop));
    MUST(bgl_loop_set_clock(W.loop, fuzz_clock_read, &W.clk));

    for (int ops = 0; ops < MAX_OPS && fin_left(&W.in); ops++) {
        unsigned op = fin_u8(&W.in);
        unsigned arg = fin_u8(&W.in);
        switch (op % 8) {
        case 0: timer_op(op / 8, arg); break;
        case 1: io_op(op / 8, arg); break;
        case 2: signal_op(op / 8, arg); break;
        case 3: if (op & 8) call_soon(); else call_threadsafe(); break;
        case 4:
        case 5: loop_step(op / 8 + arg); break;
        case 6: threads_step(op / 8); break;
        case 7: loop_step(0); break;
        }
        check_timers();
        bgl_loop_stats s = stats();
        CHECK(s.io_watchers <= 2 * N_CHANS, "io_watchers %llu", (unsigned long long)s.io_watchers);
    }
    teardown();
    int fds_after = fuzz_count_fds();
    CHECK(fds_after == fds_before, "descriptors: %d before, %d after", fds_before, fds_after);
    return 0;
}
