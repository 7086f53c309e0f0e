/* echo_server.c - a TCP echo server on 127.0.0.1 built on libbgloop.
 *
 * Usage: echo_server [-b BYTES] [PORT]
 *
 *   PORT     TCP port to listen on (0 = pick a free one).  Without it the
 *            BGLOOP_ECHO_PORT environment variable is used, else 8007.
 *   -b N     set each connection's kernel socket buffers (send and receive)
 *            to N bytes.  Small values make partial writes and back-pressure
 *            happen early and predictably (the echo test uses it).
 *
 * The first line on stdout is "listening on 127.0.0.1:PORT" with the port
 * actually bound.  SIGINT or SIGTERM shut the server down cleanly: every
 * watcher is freed, the loop is freed and the exit status is 0.  A summary
 * line goes to stderr on shutdown.
 *
 * It builds for Windows too (Winsock; Ctrl+C is SIGINT, closing the console
 * SIGTERM): the loop starts Winsock for as long as it lives, so the sockets
 * here are made after bgl_loop_new() and closed before bgl_loop_free().
 *
 * It shows the usual pattern of a readiness-based server:
 *   - the listening socket has a read watcher that accepts new connections;
 *   - each connection has one watcher whose interest follows its state:
 *     READ while its output buffer has room, WRITE while output is pending.
 *     A full buffer drops READ, so a client that sends faster than it reads
 *     is slowed down by TCP itself (back-pressure) instead of making the
 *     server buffer without limit.
 */
#include <bgloop/bgloop.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#else
#  include <arpa/inet.h>
#  include <fcntl.h>
#  include <netinet/in.h>
#  include <sys/socket.h>
#  include <unistd.h>
#endif

/* A socket is a bgl_fd: an int on POSIX, a SOCKET on Windows. */
#ifdef _WIN32
#  define SOCK_NONE INVALID_SOCKET
#  define sock_close closesocket
/* Winsock reports errors through WSAGetLastError(): as errno values. */
static int sock_errno(void)
{
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNRESET: return ECONNRESET;
    case WSAEMFILE: return EMFILE;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEACCES: return EACCES;
    default: return EIO;
    }
}
#else
#  define SOCK_NONE (-1)
#  define sock_close close
static int sock_errno(void)
{
    return errno;
}
#endif

#define DEFAULT_PORT 8007
/* Per-connection buffer: what was read but not yet echoed back. */
#define CONN_BUF_SIZE (64 * 1024)
/* How long to stop accepting when out of descriptors or memory. */
#define ACCEPT_RETRY_NS (100 * 1000 * 1000)

struct server;

struct conn {
    struct server *srv;
    struct conn *prev, *next;
    bgl_fd fd;
    bgl_io *io;
    bool eof;            /* peer shut down its write side */
    bool paused;         /* reads paused because the buffer is full */
    size_t start, end;   /* pending output is buf[start, end) */
    unsigned char buf[CONN_BUF_SIZE];
};

struct server {
    bgl_loop *loop;
    bgl_fd listen_fd;
    bgl_io *listen_io;
    bgl_timer *accept_retry; /* re-enables accepting after EMFILE & co. */
    bgl_signal *sigint, *sigterm;
    struct conn *conns;
    /* statistics for the shutdown summary */
    unsigned long long accepted, bytes, partial_writes, read_pauses;
};

static void usage(FILE *to)
{
    fprintf(to, "usage: echo_server [-b BYTES] [PORT]\n"
                "  PORT defaults to $BGLOOP_ECHO_PORT, else %d; 0 picks a free port\n",
            DEFAULT_PORT);
}

/* Parse a decimal number in [min, max]; false on any junk. */
static bool parse_num(const char *s, long min, long max, long *out)
{
    char *end;
    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void conn_close(struct conn *c)
{
    struct server *srv = c->srv;
    bgl_io_free(c->io); /* before close(): the watcher must not outlive its fd */
    sock_close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* Interest follows state: read while there is room (and the peer may still
 * send), write while output is pending. */
static int conn_update_interest(struct conn *c)
{
    unsigned ev = 0;
    bool room = c->end < CONN_BUF_SIZE || c->start > 0;
    if (!c->eof && room)
        ev |= BGL_IO_READ;
    if (!c->eof && !room && !c->paused)
        c->srv->read_pauses++;
    c->paused = !room;
    if (c->end > c->start)
        ev |= BGL_IO_WRITE;
    return bgl_io_set_events(c->io, ev);
}

/* Systems without MSG_NOSIGNAL (macOS) set SO_NOSIGPIPE on the socket
 * instead (sock_setup()): a peer that went away is an EPIPE, not a signal. */
#ifndef MSG_NOSIGNAL
#  define MSG_NOSIGNAL 0
#endif

#if !defined(HAVE_ACCEPT4) || !defined(SOCK_NONBLOCK) || !defined(SOCK_CLOEXEC)
#  define SOCK_SETUP_BY_FCNTL 1
#endif

#ifdef _WIN32
/* Non-blocking and not inherited by child processes. */
static int sock_setup(bgl_fd fd)
{
    u_long one = 1;
    SetHandleInformation((HANDLE)fd, HANDLE_FLAG_INHERIT, 0);
    return ioctlsocket(fd, FIONBIO, &one) == 0 ? 0 : -1;
}
#elif defined(SOCK_SETUP_BY_FCNTL)
/* Close-on-exec, non-blocking and SIGPIPE-free: what accept4() and socket()
 * do in one call with SOCK_CLOEXEC/SOCK_NONBLOCK where the system has them. */
static int sock_setup(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -1;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
#ifdef SO_NOSIGPIPE
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
        return -1;
#endif
    return 0;
}

#endif

#if defined(_WIN32) || defined(SOCK_SETUP_BY_FCNTL)
/* A descriptor from socket() or accept() set up by sock_setup(), or
 * SOCK_NONE with the error for sock_errno() (the descriptor closed). */
static bgl_fd sock_ready(bgl_fd fd)
{
    if (fd != SOCK_NONE && sock_setup(fd) < 0) {
#ifdef _WIN32
        int e = WSAGetLastError();
        closesocket(fd);
        WSASetLastError(e);
#else
        int e = errno;
        close(fd);
        errno = e;
#endif
        return SOCK_NONE;
    }
    return fd;
}
#endif

static bgl_fd sock_accept(bgl_fd lfd)
{
#if defined(HAVE_ACCEPT4) && defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && !defined(_WIN32)
    return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    return sock_ready(accept(lfd, NULL, NULL));
#endif
}

static bgl_fd sock_tcp(void)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && !defined(_WIN32)
    return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    return sock_ready(socket(AF_INET, SOCK_STREAM, 0));
#endif
}

/* Write as much pending output as the socket takes; what it does not take
 * stays buffered (a partial write) and WRITE interest will bring us back.
 * Returns false if the connection failed and must be closed. */
static bool conn_flush(struct conn *c)
{
    while (c->end > c->start) {
        ptrdiff_t n = send(c->fd, (const void *)(c->buf + c->start), c->end - c->start,
                           MSG_NOSIGNAL);
        if (n < 0) {
            int e = sock_errno();
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                c->srv->partial_writes++;
                break;
            }
            return false;
        }
        c->start += (size_t)n;
        c->srv->bytes += (unsigned long long)n;
    }
    if (c->start == c->end)
        c->start = c->end = 0;
    return true;
}

/* Read what fits in the buffer.  Returns false on error. */
static bool conn_fill(struct conn *c)
{
    if (c->end == CONN_BUF_SIZE && c->start > 0) {
        /* make room at the tail; pending output moves to the front */
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    while (c->end < CONN_BUF_SIZE) {
        ptrdiff_t n = recv(c->fd, (void *)(c->buf + c->end), CONN_BUF_SIZE - c->end, 0);
        if (n < 0) {
            int e = sock_errno();
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return true;
            return false;
        }
        if (n == 0) {
            c->eof = true;
            return true;
        }
        c->end += (size_t)n;
        /* one read per wakeup is enough for fairness between clients; the
         * watcher is level-triggered and will be called again */
        return true;
    }
    return true;
}

static void on_conn(bgl_io *io, bgl_fd fd, unsigned revents, void *userdata)
{
    (void)io;
    (void)fd;
    struct conn *c = userdata;

    if (revents & BGL_IO_ERROR)
        goto close;
    if (revents & BGL_IO_READ) {
        if (!conn_fill(c))
            goto close;
    }
    /* Write right after reading, or when the socket became writable.  Trying
     * immediately saves an iteration in the common case where it has room. */
    if (c->end > c->start && !conn_flush(c))
        goto close;
    if (c->eof && c->end == c->start)
        goto close; /* everything echoed, the peer sends no more */
    if ((revents & BGL_IO_HUP) && !(revents & (BGL_IO_READ | BGL_IO_WRITE)))
        goto close; /* hung up in both directions: nothing can be delivered */
    if (conn_update_interest(c) < 0)
        goto close;
    return;
close:
    conn_close(c);
}

static void on_accept(bgl_io *io, bgl_fd fd, unsigned revents, void *userdata)
{
    (void)io;
    (void)revents;
    struct server *srv = userdata;

    /* Accept a bounded batch: level-triggered, so the rest comes next
     * iteration and a connection flood cannot starve established clients. */
    for (int i = 0; i < 64; i++) {
        bgl_fd cfd = sock_accept(fd);
        if (cfd == SOCK_NONE) {
            int e = sock_errno();
            if (e == EINTR || e == ECONNABORTED)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            /* EMFILE & co.: the pending connection stays queued and the
             * level-triggered listener would fire again at once, spinning
             * the CPU.  Stop listening for a moment instead. */
            fprintf(stderr, "echo_server: accept: %s; pausing accepts\n", strerror(e));
            if (bgl_io_set_events(srv->listen_io, 0) == 0)
                bgl_timer_start(srv->accept_retry, ACCEPT_RETRY_NS, 0);
            return;
        }
        struct conn *c = malloc(sizeof *c);
        if (c == NULL) {
            sock_close(cfd);
            continue;
        }
        c->srv = srv;
        c->fd = cfd;
        c->eof = false;
        c->paused = false;
        c->start = c->end = 0;
        int r = bgl_io_new(srv->loop, cfd, BGL_IO_READ, on_conn, c, &c->io);
        if (r < 0) {
            fprintf(stderr, "echo_server: watch connection: %s\n", bgl_strerror(r));
            sock_close(cfd);
            free(c);
            continue;
        }
        c->prev = NULL;
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->accepted++;
    }
}

static void on_accept_retry(bgl_timer *timer, void *userdata)
{
    (void)timer;
    struct server *srv = userdata;
    bgl_io_set_events(srv->listen_io, BGL_IO_READ);
}

static void server_shutdown(struct server *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    if (srv->listen_io) {
        bgl_io_free(srv->listen_io);
        srv->listen_io = NULL;
    }
    if (srv->accept_retry) {
        bgl_timer_free(srv->accept_retry);
        srv->accept_retry = NULL;
    }
    if (srv->listen_fd != SOCK_NONE) {
        sock_close(srv->listen_fd);
        srv->listen_fd = SOCK_NONE;
    }
    if (srv->sigint) {
        bgl_signal_free(srv->sigint);
        srv->sigint = NULL;
    }
    if (srv->sigterm) {
        bgl_signal_free(srv->sigterm);
        srv->sigterm = NULL;
    }
}

static void on_signal(bgl_signal *sig, int signo, void *userdata)
{
    (void)sig;
    struct server *srv = userdata;
    fprintf(stderr, "echo_server: %s, shutting down\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
    server_shutdown(srv); /* frees this very source too: allowed from its callback */
    bgl_loop_stop(srv->loop, 0);
}

/* A listening socket in *out, or a negative errno. */
static int listen_on(uint16_t port, int bufsize, uint16_t *bound, bgl_fd *out)
{
    bgl_fd fd = sock_tcp();
    if (fd == SOCK_NONE)
        return -sock_errno();
#ifndef _WIN32
    /* (Windows' SO_REUSEADDR would let another socket take the port.) */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#endif
    /* Accepted sockets inherit the listener's buffer sizes on Linux; the
     * receive size must be set before listen() to take part in the window
     * negotiation. */
    if (bufsize > 0 &&
        (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, (const void *)&bufsize, sizeof bufsize) < 0 ||
         setsockopt(fd, SOL_SOCKET, SO_RCVBUF, (const void *)&bufsize, sizeof bufsize) < 0))
        goto fail;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0)
        goto fail;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        goto fail;
    *bound = ntohs(sa.sin_port);
    *out = fd;
    return 0;
fail:;
    int err = -sock_errno();
    sock_close(fd);
    return err;
}

int main(int argc, char **argv)
{
    long port = DEFAULT_PORT, bufsize = 0;
    const char *port_arg = getenv("BGLOOP_ECHO_PORT");
    int i = 1;

    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (i < argc && !strcmp(argv[i], "-b")) {
        if (i + 1 >= argc || !parse_num(argv[i + 1], 1, 1L << 30, &bufsize)) {
            usage(stderr);
            return 2;
        }
        i += 2;
    }
    if (i < argc)
        port_arg = argv[i++];
    if (i < argc || (port_arg && *port_arg && !parse_num(port_arg, 0, 65535, &port))) {
        usage(stderr);
        return 2;
    }

    struct server srv = {.listen_fd = SOCK_NONE};
    int r = bgl_loop_new(&srv.loop);
    if (r < 0) {
        fprintf(stderr, "echo_server: bgl_loop_new: %s\n", bgl_strerror(r));
        return 1;
    }
    /* Signal sources first: they block the signals, which must happen before
     * anything could deliver them the default (fatal) way. */
    if ((r = bgl_signal_new(srv.loop, SIGINT, on_signal, &srv, &srv.sigint)) < 0 ||
        (r = bgl_signal_new(srv.loop, SIGTERM, on_signal, &srv, &srv.sigterm)) < 0) {
        fprintf(stderr, "echo_server: bgl_signal_new: %s\n", bgl_strerror(r));
        goto fail;
    }
    uint16_t bound = 0;
    r = listen_on((uint16_t)port, (int)bufsize, &bound, &srv.listen_fd);
    if (r < 0) {
        fprintf(stderr, "echo_server: listen on 127.0.0.1:%ld: %s\n", port, bgl_strerror(r));
        goto fail;
    }
    r = bgl_io_new(srv.loop, srv.listen_fd, BGL_IO_READ, on_accept, &srv, &srv.listen_io);
    if (r == 0)
        r = bgl_timer_new(srv.loop, on_accept_retry, &srv, &srv.accept_retry);
    if (r < 0) {
        fprintf(stderr, "echo_server: watch listener: %s\n", bgl_strerror(r));
        goto fail;
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned)bound);
    fflush(stdout);

    int code = bgl_loop_run(srv.loop);
    if (code < 0)
        fprintf(stderr, "echo_server: bgl_loop_run: %s\n", bgl_strerror(code));
    server_shutdown(&srv); /* no-op after a signal; needed if run failed */
    fprintf(stderr,
            "echo_server: %llu connections, %llu bytes echoed, %llu partial writes, "
            "%llu read pauses\n",
            srv.accepted, srv.bytes, srv.partial_writes, srv.read_pauses);
    r = bgl_loop_free(srv.loop);
    if (r < 0) {
        fprintf(stderr, "echo_server: bgl_loop_free: %s\n", bgl_strerror(r));
        return 1;
    }
    return code == 0 ? 0 : 1;

fail:
    server_shutdown(&srv);
    bgl_loop_free(srv.loop);
    return 1;
}
