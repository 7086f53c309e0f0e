/* echo_load - a load generator for TCP echo servers (bench_echo.py).
 *
 *     echo_load HOST PORT CONNECTIONS SIZE SECONDS
 *
 * Opens CONNECTIONS non-blocking TCP connections (TCP_NODELAY) and drives
 * them from one epoll thread.  Each keeps one message of SIZE bytes in
 * flight: send it, read back exactly SIZE bytes, compare them with what was
 * sent, send the next.  Every message differs from the previous one (its
 * first bytes carry the connection and a sequence number), so a server that
 * answers stale, short, reordered or foreign data fails the run instead of
 * being measured.
 *
 * Prints, once all connections are up, "connected", then after SECONDS:
 *     round_trips N
 *     seconds T
 *     rate R
 * Exit status 0, or 1 with the reason on stderr (a wrong or missing echo,
 * a closed connection, a socket error).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int id;
    uint64_t seq;
    size_t sent, got;
    int want_out;        /* EPOLLOUT is registered */
    unsigned char *msg;  /* the message in flight */
    unsigned char *back; /* what came back of it */
};

static size_t size;

static void die(const char *what, int err)
{
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(err));
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The next message: its head names the connection and the sequence number
 * (as far as SIZE allows), the rest is a pattern shifted by both. */
static void next_message(struct conn *c)
{
    c->seq++;
    unsigned char head[12];
    memcpy(head, &c->id, 4);
    memcpy(head + 4, &c->seq, 8);
    size_t n = size < sizeof head ? size : sizeof head;
    memcpy(c->msg, head, n);
    unsigned char k = (unsigned char)(c->seq * 31 + (uint64_t)c->id * 7);
    for (size_t i = n; i < size; i++)
        c->msg[i] = (unsigned char)(k + i);
    c->sent = c->got = 0;
}

static void set_out(int ep, struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl", errno);
    c->want_out = on;
}

/* Send what is left of the message; EPOLLOUT only while the kernel does not
 * take it all. */
static void pump_out(int ep, struct conn *c)
{
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            die("send", errno);
        }
        c->sent += (size_t)n;
    }
    set_out(ep, c, c->sent < size);
}

/* Read what is there; 1 when the message came back whole and right. */
static int pump_in(struct conn *c)
{
    for (;;) {
        /* Extra bytes after a whole message start the next one and fail
         * its comparison (or the count below). */
        if (c->got == size)
            break;
        ssize_t n = recv(c->fd, c->back + c->got, size - c->got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            die("recv", errno);
        }
        if (n == 0) {
            fprintf(stderr, "echo_load: connection %d: closed by the server after %zu of %zu"
                    " bytes\n", c->id, c->got, size);
            exit(1);
        }
        c->got += (size_t)n;
        if (c->got > c->sent) {
            fprintf(stderr, "echo_load: connection %d: %zu bytes back, %zu sent\n", c->id,
                    c->got, c->sent);
            exit(1);
        }
    }
    if (c->got < size)
        return 0;
    if (memcmp(c->msg, c->back, size) != 0) {
        size_t i = 0;
        while (c->msg[i] == c->back[i])
            i++;
        fprintf(stderr, "echo_load: connection %d, message %llu: byte %zu differs\n", c->id,
                (unsigned long long)c->seq, i);
        exit(1);
    }
    return 1;
}

static int connect_to(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0)
        die("socket", errno);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("connect", errno);
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("TCP_NODELAY", errno);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("O_NONBLOCK", errno);
    return fd;
}

static long arg(const char *s, const char *name, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "echo_load: %s must be an integer in [%ld, %ld], not %s\n", name, lo, hi,
                s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: echo_load HOST PORT CONNECTIONS SIZE SECONDS\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    int nconn = (int)arg(argv[3], "CONNECTIONS", 1, 10000);
    size = (size_t)arg(argv[4], "SIZE", 1, 64L << 20);
    char *end;
    double seconds = strtod(argv[5], &end);
    if (*end || !(seconds > 0 && seconds < 86400)) {
        fprintf(stderr, "echo_load: SECONDS must be a positive number, not %s\n", argv[5]);
        return 2;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "echo_load: %s:%s: %s\n", host, port, gai_strerror(gai));
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1", errno);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!conns)
        die("calloc", ENOMEM);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->fd = connect_to(ai);
        if (!(c->msg = malloc(size)) || !(c->back = malloc(size)))
            die("malloc", ENOMEM);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl", errno);
    }
    freeaddrinfo(ai);
    printf("connected\n");
    fflush(stdout);

    unsigned long long trips = 0;
    double t0 = now(), stop = t0 + seconds, t = t0;
    for (int i = 0; i < nconn; i++) {
        next_message(&conns[i]);
        pump_out(ep, &conns[i]);
    }
    enum { MAXEV = 256 };
    struct epoll_event evs[MAXEV];
    while (t < stop) {
        int ms = (int)((stop - t) * 1000) + 1;
        int n = epoll_wait(ep, evs, MAXEV, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait", errno);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLIN)) {
                if (pump_in(c)) {
                    trips++;
                    next_message(c);
                    pump_out(ep, c);
                    continue;
                }
            }
            if ((evs[i].events & EPOLLOUT) && c->sent < size)
                pump_out(ep, c);
        }
        t = now();
    }
    double elapsed = t - t0;
    /* Let the messages in flight come back (checked, not counted), so the
     * connections close cleanly rather than reset under the server. */
    int busy = nconn;
    double give_up = t + 10;
    while (busy > 0 && t < give_up) {
        int n = epoll_wait(ep, evs, MAXEV, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->got == size)
                continue; /* done; its socket stays readable only if the server misbehaves */
            if ((evs[i].events & EPOLLOUT) && c->sent < size)
                pump_out(ep, c);
            if ((evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLIN)) && pump_in(c)) {
                busy--;
                struct epoll_event ev = {0};
                if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, &ev) < 0)
                    die("epoll_ctl", errno);
            }
        }
        t = now();
    }
    if (busy > 0) {
        fprintf(stderr, "echo_load: %d messages still not echoed 10 s after the run\n", busy);
        return 1;
    }
    printf("round_trips %llu\nseconds %.6f\nrate %.1f\n", trips, elapsed, (double)trips / elapsed);
    for (int i = 0; i < nconn; i++) {
        close(conns[i].fd);
        free(conns[i].msg);
        free(conns[i].back);
    }
    free(conns);
    close(ep);
    return 0;
}
