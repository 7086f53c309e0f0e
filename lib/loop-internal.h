/* loop-internal.h - the structures behind the opaque loop handles.
 * Shared by the files of lib/ only; never installed. */
#ifndef BGL_LOOP_INTERNAL_H
#define BGL_LOOP_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "bgloop/loop.h"
#include "internal.h"
#include "os.h"
#include "queue.h"
#include "timer-heap.h"

#if !defined(BGL_BACKEND_EPOLL) && !defined(BGL_BACKEND_POLL) && !defined(BGL_BACKEND_AFD)
#  if defined(_WIN32)
#    define BGL_BACKEND_AFD 1
#  elif defined(__linux__)
#    define BGL_BACKEND_EPOLL 1
#  else
#    define BGL_BACKEND_POLL 1
#  endif
#endif

/* signalfd goes with the epoll build on Linux; everything else uses a
 * sigaction handler and a self-pipe (which also keeps that path tested). */
#if defined(__linux__) && defined(BGL_BACKEND_EPOLL)
#  define BGL_USE_SIGNALFD 1
#endif

/* A deferred or thread-safe call.  Recycled through freelists. */
typedef struct bgl_call {
    bgl_node node;
    struct bgl_call *next_free; /* freelist / thread-safe pending list link */
    bgl_callback cb;
    bgl_callback discard;
    void *userdata;
} bgl_call;

struct bgl_io {
    bgl_node node;
    bgl_loop *loop;
    bgl_fd fd;
    unsigned events;   /* interest: BGL_IO_READ | BGL_IO_WRITE */
    unsigned pending;  /* ready bits collected, not yet dispatched */
    int internal;      /* wakeup / signal descriptor: handled at collect */
    uint32_t gen;      /* unique per loop: tells a stale epoll entry apart */
    size_t slot;       /* backend-private (poll array index) */
    void *be;          /* backend-private (AFD: the socket's poll state) */
    bgl_io_cb cb;
    void *userdata;
};

struct bgl_timer {
    bgl_node node;
    bgl_loop *loop;
    size_t heap_idx;   /* BGL_HEAP_NONE when not in the heap */
    uint64_t deadline;
    uint64_t repeat;
    bgl_timer_cb cb;
    void *userdata;
};

struct bgl_signal {
    bgl_node node;
    bgl_loop *loop;
    int signo;
#ifdef _WIN32
    void (*old_handler)(int); /* the C runtime's handler, for raise() */
#else
    int was_blocked;          /* signalfd: restore the mask on free */
    struct sigaction old_act; /* self-pipe: restore the handler on free */
#endif
    bgl_signal_cb cb;
    void *userdata;
};

#define BGL_CALL_FREE_MAX 1024

struct bgl_loop {
    bgl_node queue;          /* dispatch queue (sentinel) */
    size_t queued;
    int dispatching;         /* inside a callback of this loop */
    int freeing;             /* bgl_loop_free() is running the discards
                                (set under ts_lock: call_threadsafe reads it) */

    uint64_t now;
    bgl_clock_fn clock;
    void *clock_ud;
    int64_t budget;
    int stop_requested;
    unsigned stop_calls;     /* bgl_loop_stop() calls: a kick ends after
                                an iteration that made one */
    int exit_code;
    unsigned holds;

    bgl_call *call_free;     /* loop-thread freelist of call nodes */
    size_t call_free_n;

    bgl_timer_heap heap;
    uint64_t timer_seq;
    size_t timer_count;

    bgl_io **fdtab;          /* fd -> watcher (internal ones too) */
    size_t fdtab_cap;
    uint32_t io_gen;
    size_t io_count;         /* user watchers */
    size_t io_active;        /* user watchers with non-zero interest */

    /* backend state */
    int epfd;
    void *be_events;         /* epoll: event array */
    int be_nevents;
#ifdef _WIN32
    HANDLE iocp;             /* AFD: the completion port */
    HANDLE afd;              /* AFD: the \\Device\\Afd handle the polls go through */
    void *be_list;           /* AFD: poll states to (re)submit before a wait */
    size_t be_inflight;      /* AFD: polls submitted, completion not yet seen */
    volatile LONG wake_posted; /* AFD: a wakeup packet is in the port */
#endif
    void *pfds;              /* poll: struct pollfd array */
    bgl_io **pios;           /* poll: watcher of each pollfd */
    size_t npfds, cap_pfds;

    /* thread-safe calls: pushed under ts_lock by any thread */
    bgli_mutex ts_lock;
    bgl_call *ts_head, *ts_tail;
    int ts_signaled;         /* wakeup written since the last collect */
    bgl_call *ts_free;       /* nodes for other threads (under ts_lock) */
    size_t ts_free_n;
    bgl_call *ts_recycle;    /* dispatched, loop thread only */
    size_t ts_recycle_n;
    bgl_fd wake_rfd, wake_wfd; /* eventfd (same fd twice), pipe or socket pair */
    bgl_io wake_io;
    int wake_ready;

    /* signals */
    size_t signal_count;
    bgl_io sig_io;
#ifdef _WIN32
    volatile LONG sig_pending; /* console events not yet collected, 1 << signo */
#else
    int sig_rfd, sig_wfd;    /* signalfd (wfd -1) or self-pipe */
    sigset_t sig_mask;       /* signalfd mask */
#endif
    int sig_ready;
    bgl_signal *sigsrc[NSIG];/* this loop's source of each signal */

    bgl_loop_stats stats;
};

/* loop.c */
/* Inline: on the path of every deferred call and every dispatch. */
static inline void bgli_loop_enqueue(bgl_loop *loop, bgl_node *n)
{
    bgli_queue_push(&loop->queue, n);
    loop->queued++;
}

static inline void bgli_loop_dequeue(bgl_loop *loop, bgl_node *n)
{
    bgli_queue_unlink(n);
    loop->queued--;
}
/* Called by the backend for each ready descriptor. */
BGL_INTERNAL void bgli_loop_io_ready(bgl_loop *loop, bgl_io *io, unsigned revents);
BGL_INTERNAL uint64_t bgli_loop_clock(const bgl_loop *loop);

/* call.c */
BGL_INTERNAL void bgli_calls_free_all(bgl_loop *loop);
BGL_INTERNAL void bgli_call_recycle_slow(bgl_loop *loop, bgl_call *c);
/* Return a dispatched call node: the common case (a call_soon node, room in
 * the freelist) inline, the rest in call.c. */
static inline void bgli_call_recycle(bgl_loop *loop, bgl_call *c)
{
    if (c->node.kind == BGL_NODE_CALL && loop->call_free_n < BGL_CALL_FREE_MAX) {
        c->next_free = loop->call_free;
        loop->call_free = c;
        loop->call_free_n++;
        return;
    }
    bgli_call_recycle_slow(loop, c);
}

/* timer.c */
BGL_INTERNAL void bgli_timers_collect(bgl_loop *loop);

/* threadsafe.c */
BGL_INTERNAL int bgli_threadsafe_init(bgl_loop *loop);
BGL_INTERNAL void bgli_threadsafe_free(bgl_loop *loop);
BGL_INTERNAL void bgli_threadsafe_collect(bgl_loop *loop);

/* signal.c */
BGL_INTERNAL void bgli_signals_init(bgl_loop *loop);
BGL_INTERNAL void bgli_signals_free(bgl_loop *loop);
BGL_INTERNAL void bgli_signals_collect(bgl_loop *loop);

/* io.c */
BGL_INTERNAL int bgli_fd_valid(bgl_fd fd);
/* Register an internal descriptor's watcher: fd table + backend (READ). */
BGL_INTERNAL int bgli_io_internal_add(bgl_loop *loop, bgl_io *io, bgl_fd fd);
BGL_INTERNAL void bgli_io_internal_remove(bgl_loop *loop, bgl_io *io);
/* The watcher of fd if its generation matches, else NULL. */
static inline bgl_io *bgli_io_lookup(const bgl_loop *loop, bgl_fd fd, uint32_t gen)
{
    if (bgli_fd_index(fd) >= loop->fdtab_cap) /* a negative int too */
        return NULL;
    bgl_io *io = loop->fdtab[bgli_fd_index(fd)];
    return io && io->gen == gen ? io : NULL;
}
/* A close-on-exec, non-blocking pipe: the self-pipes of the wakeup and of
 * signals.  0 or a negative errno. */
BGL_INTERNAL int bgli_pipe_cloexec_nonblock(bgl_fd fds[2]);

#endif /* BGL_LOOP_INTERNAL_H */
