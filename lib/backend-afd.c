/* backend-afd.c - Windows backend: socket readiness from the AFD driver.
 *
 * Winsock's sockets are files of the AFD driver (\Device\Afd), which answers
 * a poll request (IOCTL_AFD_POLL) about one socket once one of the asked
 * events is true - at once if it already is, so the request is
 * level-triggered.  The loop opens a handle of its own to the driver,
 * associates it with an I/O completion port, and keeps one request in
 * flight per watched socket; a completed request is a completion packet,
 * collected by GetQueuedCompletionStatusEx().  After a completion the
 * request is submitted again at the next wait (so the watcher stays
 * level-triggered); a change of interest that the request in flight does
 * not cover cancels it (CancelIoEx) and submits a new one once the
 * cancellation completed.  A request belongs to the loop's memory until its
 * packet arrives: a watcher freed meanwhile leaves its state behind, freed
 * by that packet.  Wakeups from other threads are packets posted to the
 * port (PostQueuedCompletionStatus).  The poll goes to the base socket
 * (SIO_BASE_HANDLE), beneath any layered service provider.
 */
#include "loop-internal.h"

#ifdef BGL_BACKEND_AFD

#include <errno.h>
#include <stdlib.h>

#include <mswsock.h>
#include <winternl.h>

#include "backend.h"

#define MAX_EVENTS 64
#define MAX_EVENTS_CAP 4096

#define IOCTL_AFD_POLL 0x00012024
#define AFD_POLL_RECEIVE 0x0001
#define AFD_POLL_SEND 0x0004
#define AFD_POLL_DISCONNECT 0x0008
#define AFD_POLL_ABORT 0x0010
#define AFD_POLL_LOCAL_CLOSE 0x0020
#define AFD_POLL_ACCEPT 0x0080
#define AFD_POLL_CONNECT_FAIL 0x0100

#define NTSTATUS_PENDING ((NTSTATUS)0x00000103L)
#define NTSTATUS_CANCELLED ((NTSTATUS)0xC0000120L)

/* Completion keys: the driver handle's packets, and wakeups. */
#define KEY_AFD 0
#define KEY_WAKE 1

typedef struct {
    HANDLE handle;
    ULONG events;
    NTSTATUS status;
} afd_poll_handle;

typedef struct {
    LARGE_INTEGER timeout;
    ULONG count;
    ULONG exclusive;
    afd_poll_handle handles[1];
} afd_poll_info;

enum { SOCK_IDLE, SOCK_PENDING, SOCK_CANCELLING };

/* One watched socket.  The status block comes first: the completion packet
 * names the request by its address. */
typedef struct afd_sock {
    IO_STATUS_BLOCK iosb;
    afd_poll_info info;
    bgl_io *io;             /* NULL: the watcher is gone, a request is not */
    SOCKET base;
    ULONG submitted;        /* the events of the request in flight */
    int state;
    int closed;             /* the socket was closed: never submit again */
    int queued;             /* in the submit list */
    struct afd_sock *prev, *next;
} afd_sock;

static void list_push(bgl_loop *loop, afd_sock *s)
{
    if (s->queued)
        return;
    s->queued = 1;
    s->prev = NULL;
    s->next = loop->be_list;
    if (s->next)
        s->next->prev = s;
    loop->be_list = s;
}

static void list_drop(bgl_loop *loop, afd_sock *s)
{
    if (!s->queued)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        loop->be_list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->queued = 0;
    s->prev = s->next = NULL;
}

static int nt_errno(NTSTATUS st)
{
    return -bgli_wsa_errno((int)RtlNtStatusToDosError(st));
}

static int open_afd(HANDLE *out)
{
    static const WCHAR name[] = L"\\Device\\Afd\\bgloop";
    UNICODE_STRING path = {sizeof name - sizeof(WCHAR), sizeof name, (PWSTR)name};
    OBJECT_ATTRIBUTES attr;
    IO_STATUS_BLOCK iosb;
    InitializeObjectAttributes(&attr, &path, 0, NULL, NULL);
    NTSTATUS st = NtCreateFile(out, SYNCHRONIZE, &attr, &iosb, NULL, 0,
                               FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0);
    return st == 0 ? 0 : nt_errno(st);
}

int bgli_backend_init(bgl_loop *loop)
{
    loop->be_list = NULL;
    loop->be_inflight = 0;
    loop->wake_posted = 0;
    loop->iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!loop->iocp)
        return -bgli_wsa_errno((int)GetLastError());
    int r = open_afd(&loop->afd);
    if (r < 0) {
        loop->afd = NULL;
        goto fail;
    }
    if (!CreateIoCompletionPort(loop->afd, loop->iocp, KEY_AFD, 0)) {
        r = -bgli_wsa_errno((int)GetLastError());
        goto fail;
    }
    loop->be_events = malloc(MAX_EVENTS * sizeof(OVERLAPPED_ENTRY));
    if (!loop->be_events) {
        r = -ENOMEM;
        goto fail;
    }
    loop->be_nevents = MAX_EVENTS;
    return 0;

fail:
    if (loop->afd)
        CloseHandle(loop->afd);
    CloseHandle(loop->iocp);
    loop->afd = loop->iocp = NULL;
    return r;
}

void bgli_backend_free(bgl_loop *loop)
{
    if (!loop->iocp)
        return;
    /* Requests still in flight belong to freed watchers: cancel them and
     * wait for their packets, after which the kernel writes no more into
     * their memory.  Cancelled polls complete at once; the bound only
     * guards against a driver that never answers (their memory leaks). */
    if (loop->be_inflight)
        CancelIoEx(loop->afd, NULL);
    OVERLAPPED_ENTRY e[16];
    while (loop->be_inflight) {
        ULONG n = 0;
        if (!GetQueuedCompletionStatusEx(loop->iocp, e, 16, &n, 1000, FALSE))
            break;
        for (ULONG i = 0; i < n; i++) {
            if (e[i].lpCompletionKey != KEY_AFD || !e[i].lpOverlapped)
                continue;
            afd_sock *s = (afd_sock *)e[i].lpOverlapped;
            loop->be_inflight--;
            if (!s->io)
                free(s);
            else
                s->state = SOCK_IDLE;
        }
    }
    CloseHandle(loop->afd);
    CloseHandle(loop->iocp);
    loop->afd = loop->iocp = NULL;
    free(loop->be_events);
    loop->be_events = NULL;
}

int bgli_backend_check(bgl_loop *loop, bgl_fd fd)
{
    (void)loop;
    (void)fd;
    return 0;
}

/* The AFD events that serve an interest.  Errors and the socket's close
 * are always asked for, as epoll always reports them. */
static ULONG to_afd(unsigned ev)
{
    ULONG a = AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL | AFD_POLL_LOCAL_CLOSE;
    if (ev & BGL_IO_READ)
        a |= AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_DISCONNECT;
    if (ev & BGL_IO_WRITE)
        a |= AFD_POLL_SEND;
    return a;
}

/* A peer's shutdown makes the socket readable (a read returns 0) and is a
 * hangup, as WSAPoll() says it; a reset is an error and a hangup, readable
 * too (a read says what happened); a failed connect is an error, a hangup,
 * and writable (as epoll says it). */
static unsigned from_afd(ULONG a)
{
    unsigned ev = 0;
    if (a & (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT))
        ev |= BGL_IO_READ;
    if (a & AFD_POLL_DISCONNECT)
        ev |= BGL_IO_READ | BGL_IO_HUP;
    if (a & AFD_POLL_SEND)
        ev |= BGL_IO_WRITE;
    if (a & AFD_POLL_ABORT)
        ev |= BGL_IO_READ | BGL_IO_ERROR | BGL_IO_HUP;
    if (a & AFD_POLL_CONNECT_FAIL)
        ev |= BGL_IO_WRITE | BGL_IO_ERROR | BGL_IO_HUP;
    return ev;
}

static int base_socket(SOCKET s, SOCKET *base)
{
    DWORD bytes;
    if (WSAIoctl(s, SIO_BASE_HANDLE, NULL, 0, base, sizeof *base, &bytes, NULL, NULL) == 0)
        return 0;
    /* A layered provider that hides the base socket from SIO_BASE_HANDLE
     * still answers the query meant for select(). */
    if (WSAIoctl(s, SIO_BSP_HANDLE_POLL, NULL, 0, base, sizeof *base, &bytes, NULL, NULL) == 0)
        return 0;
    return bgli_wsa_err();
}

/* Submit the request for the watcher's current interest. */
static int submit(bgl_loop *loop, afd_sock *s)
{
    ULONG events = to_afd(s->io->events);
    s->info.timeout.QuadPart = INT64_MAX;
    s->info.count = 1;
    s->info.exclusive = FALSE;
    s->info.handles[0].handle = (HANDLE)s->base;
    s->info.handles[0].events = events;
    s->info.handles[0].status = 0;
    s->iosb.Status = NTSTATUS_PENDING;
    NTSTATUS st = NtDeviceIoControlFile(loop->afd, NULL, NULL, &s->iosb, &s->iosb,
                                        IOCTL_AFD_POLL, &s->info, sizeof s->info, &s->info,
                                        sizeof s->info);
    if (st != 0 && st != NTSTATUS_PENDING) {
        int r = nt_errno(st);
        if (r == -EBADF)
            s->closed = 1;
        return r;
    }
    /* Completed at once or not: the packet comes through the port. */
    s->state = SOCK_PENDING;
    s->submitted = events;
    loop->be_inflight++;
    return 0;
}

static void cancel(bgl_loop *loop, afd_sock *s)
{
    if (s->state != SOCK_PENDING)
        return;
    /* ERROR_NOT_FOUND: it completed already, its packet is on its way. */
    CancelIoEx(loop->afd, (OVERLAPPED *)&s->iosb);
    s->state = SOCK_CANCELLING;
}

int bgli_backend_set(bgl_loop *loop, bgl_io *io, unsigned old_events, unsigned new_events)
{
    (void)old_events;
    afd_sock *s = io->be;
    if (!new_events) {
        if (s) {
            list_drop(loop, s);
            cancel(loop, s);
        }
        return 0;
    }
    if (!bgli_fd_valid(io->fd) || (s && s->closed))
        return -EBADF;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -ENOMEM;
        int r = base_socket(io->fd, &s->base);
        if (r < 0) {
            free(s);
            return r;
        }
        s->io = io;
        io->be = s;
    }
    /* The request in flight reports a superset: the dispatch filters by
     * interest, and the next request asks for exactly the new one. */
    if (s->state == SOCK_PENDING && !(to_afd(new_events) & ~s->submitted))
        return 0;
    cancel(loop, s);
    list_push(loop, s);
    return 0;
}

void bgli_backend_remove(bgl_loop *loop, bgl_io *io)
{
    afd_sock *s = io->be;
    if (!s)
        return;
    io->be = NULL;
    list_drop(loop, s);
    s->io = NULL;
    if (s->state == SOCK_IDLE)
        free(s);
    else
        cancel(loop, s);
}

void bgli_backend_wake(bgl_loop *loop)
{
    /* One packet in the port at a time: a storm of wakeups costs nothing. */
    if (InterlockedExchange(&loop->wake_posted, 1) == 0 &&
        !PostQueuedCompletionStatus(loop->iocp, 0, KEY_WAKE, NULL))
        InterlockedExchange(&loop->wake_posted, 0);
}

/* Submit what the list holds: sockets whose request completed or whose
 * interest changed.  A request that cannot be made is reported as an
 * error to its watcher, once; a closed socket reports nothing (as a
 * closed descriptor leaves an epoll set). */
static int submit_all(bgl_loop *loop)
{
    int reported = 0;
    afd_sock *s;
    while ((s = loop->be_list)) {
        list_drop(loop, s);
        if (s->state != SOCK_IDLE || s->closed || !s->io || !s->io->events)
            continue;
        if (submit(loop, s) < 0 && !s->closed) {
            s->closed = 1;
            bgli_loop_io_ready(loop, s->io, BGL_IO_ERROR | BGL_IO_HUP);
            reported++;
        }
    }
    return reported;
}

/* One completion: returns 1 if it made something ready. */
static int complete(bgl_loop *loop, OVERLAPPED_ENTRY *e)
{
    if (e->lpCompletionKey == KEY_WAKE) {
        InterlockedExchange(&loop->wake_posted, 0);
        loop->wake_ready = 1;
        return 1;
    }
    if (!e->lpOverlapped)
        return 0;
    afd_sock *s = (afd_sock *)e->lpOverlapped;
    loop->be_inflight--;
    s->state = SOCK_IDLE;
    bgl_io *io = s->io;
    if (!io) {
        free(s);
        return 0;
    }
    NTSTATUS st = s->iosb.Status;
    unsigned rev = 0;
    if (st == NTSTATUS_CANCELLED) {
        /* A change of interest: ask again below. */
    } else if (st != 0) {
        rev = BGL_IO_ERROR;
    } else if (s->info.count > 0) {
        ULONG a = s->info.handles[0].events;
        if (a & AFD_POLL_LOCAL_CLOSE) {
            s->closed = 1;
            return 0;
        }
        rev = from_afd(a);
    }
    if (!io->events)
        return 0; /* paused since: no events at all */
    list_push(loop, s);
    if (!rev)
        return 0;
    bgli_loop_io_ready(loop, io, rev);
    return 1;
}

int bgli_backend_poll(bgl_loop *loop, int64_t timeout_ns)
{
    uint64_t deadline = 0;
    if (timeout_ns > 0) {
        uint64_t now = bgl_monotonic_ns();
        deadline = (uint64_t)timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)timeout_ns;
    }
    for (;;) {
        int ready = submit_all(loop);
        int ms = bgli_timeout_ms(ready ? 0 : timeout_ns);
        ULONG n = 0;
        if (!GetQueuedCompletionStatusEx(loop->iocp, loop->be_events, (ULONG)loop->be_nevents,
                                         &n, ms < 0 ? INFINITE : (DWORD)ms, FALSE)) {
            DWORD err = GetLastError();
            if (err != WAIT_TIMEOUT)
                return -bgli_wsa_errno((int)err);
            n = 0;
        }
        OVERLAPPED_ENTRY *e = loop->be_events;
        for (ULONG i = 0; i < n; i++)
            ready += complete(loop, &e[i]);
        if (n == (ULONG)loop->be_nevents && n < MAX_EVENTS_CAP) {
            void *bigger = realloc(loop->be_events, (size_t)n * 2 * sizeof(*e));
            if (bigger) {
                loop->be_events = bigger;
                loop->be_nevents = (int)n * 2;
            }
        }
        /* Only cancellations or stale requests came back: that is no
         * reason to return before the timeout. */
        if (ready || n == 0 || timeout_ns == 0)
            return ready;
        if (timeout_ns > 0) {
            uint64_t now = bgl_monotonic_ns();
            if (now >= deadline)
                return 0;
            timeout_ns = (int64_t)(deadline - now);
        }
    }
}

int bgli_backend_fd(const bgl_loop *loop)
{
    (void)loop;
    return -EOPNOTSUPP;
}

#endif /* BGL_BACKEND_AFD */
