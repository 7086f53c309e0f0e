/* notify.c - systemd's notification protocol (see bgloop/notify.h): the
 * socket, the watchdog timer, and what the attached service manager's
 * transitions mean for systemd. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#  include <process.h>
#else
#  include <fcntl.h>
#  include <sys/socket.h>
#  include <sys/un.h>
#  include <unistd.h>
#endif

#include "bgloop/notify.h"
#include "service-internal.h"

#ifndef BGL_HAVE_MSG_NOSIGNAL
#define MSG_NOSIGNAL 0   /* SO_NOSIGPIPE on the socket instead, if any */
#endif

#ifdef _WIN32
/* No notification socket on Windows (systemd's protocol is AF_UNIX
 * datagrams): every notifier is refused with -ENOTSUP, see notify.h. */
struct sockaddr_un {
    char sun_path[108];
};
typedef int socklen_t;
#define getpid _getpid
#endif

/* How often a stop in progress renews EXTEND_TIMEOUT_USEC=. */
#define EXTEND_PERIOD_NS 1000000000ull

struct bgl_notify {
    bgl_loop *loop;
    char *address;
    int fd;
    struct sockaddr_un sa;
    socklen_t sa_len;
    bgl_timer *watchdog, *eval, *extend;
    uint64_t watchdog_usec;
    bgl_services *mgr;
    char status[96];              /* the last STATUS= sent */
    int ready;                    /* the last of READY=1 / RELOADING=1 was READY=1 */
    int stopping;                 /* a stop of everything began */
    int stop_done;                /* ... and nothing is active any more */
    uint64_t extend_until_ns;     /* the bound of that stop, loop clock */
    uint64_t sent, failed, pings;
    int last_error;
};

/* ---- the socket ------------------------------------------------------------ */

static int parse_address(const char *address, struct sockaddr_un *sa, socklen_t *len)
{
    if (!address || !*address)
        return -EINVAL;
#ifdef _WIN32
    (void)sa;
    (void)len;
    return -ENOTSUP;
#else
    if (strncmp(address, "vsock:", 6) == 0)
        return -EAFNOSUPPORT;
    if (address[0] != '/' && address[0] != '@')
        return -EINVAL;
    size_t n = strlen(address);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (address[0] == '@') {
        if (n < 2)
            return -EINVAL;
        /* Abstract: a leading NUL, the name, no terminator (length counts). */
        if (n > sizeof sa->sun_path)
            return -ENAMETOOLONG;
        memcpy(sa->sun_path + 1, address + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        if (n >= sizeof sa->sun_path)
            return -ENAMETOOLONG;
        memcpy(sa->sun_path, address, n);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
#endif
}

static int open_socket(void)
{
#ifdef _WIN32
    return -ENOTSUP;
#else
    int type = SOCK_DGRAM;
#ifdef BGL_HAVE_SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
#ifdef BGL_HAVE_SOCK_NONBLOCK
    type |= SOCK_NONBLOCK;
#endif
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0)
        return -errno;
#ifndef BGL_HAVE_SOCK_CLOEXEC
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
#endif
#ifndef BGL_HAVE_SOCK_NONBLOCK
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
#endif
#if !defined(BGL_HAVE_MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
#endif
}

int bgl_notify_send(bgl_notify *n, const char *message)
{
    if (!n || !message || !*message)
        return -EINVAL;
#ifdef _WIN32
    errno = ENOTSUP; /* unreachable: no notifier exists on Windows */
    int r = -1;
#else
    ssize_t r;
    do
        r = sendto(n->fd, message, strlen(message), MSG_NOSIGNAL,
                   (const struct sockaddr *)&n->sa, n->sa_len);
    while (r < 0 && errno == EINTR);
#endif
    if (r < 0) {
        n->failed++;
        n->last_error = -errno;
        return n->last_error;
    }
    n->sent++;
    return 0;
}

static void sendf(bgl_notify *n, const char *fmt, ...) BGL_PRINTF(2, 3);
static void sendf(bgl_notify *n, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bgl_notify_send(n, buf);
}

/* ---- the watchdog ------------------------------------------------------------ */

static void on_watchdog(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_notify *n = userdata;
    if (bgl_notify_send(n, "WATCHDOG=1") == 0)
        n->pings++;
}

int bgl_notify_set_watchdog(bgl_notify *n, uint64_t usec)
{
    if (!n || usec == 1)
        return -EINVAL;
    if (usec > BGL_NOTIFY_WATCHDOG_MAX_USEC)
        return -ERANGE;
    n->watchdog_usec = usec;
    if (!usec)
        return bgl_timer_stop(n->watchdog);
    uint64_t half = usec * 1000u / 2;
    return bgl_timer_start(n->watchdog, half, half);
}

/* ---- following a service manager ------------------------------------------ */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void send_extend(bgl_notify *n)
{
    uint64_t now = 0;
    bgl_loop_now(n->loop, &now);
    if (now >= n->extend_until_ns) {
        bgl_timer_stop(n->extend);
        return;
    }
    sendf(n, "EXTEND_TIMEOUT_USEC=%llu",
          (unsigned long long)((n->extend_until_ns - now + 999) / 1000));
}

static void on_extend(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_notify *n = userdata;
    if (!n->mgr || n->stop_done || bgl_services_active(n->mgr, NULL) == 0) {
        bgl_timer_stop(n->extend);
        return;
    }
    send_extend(n);
}

/* Where the manager stands, told to systemd: the summary, and READY=1 /
 * RELOADING=1 as readiness comes and goes. */
static void evaluate(bgl_notify *n)
{
    bgl_services *mgr = n->mgr;
    if (!mgr)
        return;
    unsigned total = 0, running = 0, wanted = 0;
    int failed = bgl_services_list_failed(mgr, NULL, 0);
    if (failed < 0)
        failed = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        const bgl_service *s = mgr->svcs[i];
        int up = s->state == BGL_SERVICE_RUNNING && !s->ending;
        if (s->want || bgli_svc_is_busy(s) || s->restart_pending)
            total++;
        running += up;
        wanted += s->want != 0;
    }
    total += (unsigned)failed;
    if (n->stopping && !n->stop_done && bgl_services_active(mgr, NULL) == 0) {
        n->stop_done = 1;
        bgl_timer_stop(n->extend);
    }
    if (n->stopping && n->stop_done && wanted > 0)
        n->stopping = 0;   /* started again after the stop */

    char status[sizeof n->status];
    snprintf(status, sizeof status, "%u/%u services running%s", running, total,
             n->stopping && !n->stop_done ? ", stopping" : "");
    if (failed > 0)
        snprintf(status + strlen(status), sizeof status - strlen(status), ", %d failed",
                 failed);

    const char *change = NULL;
    char reload[64];
    int ready_now = bgl_services_ready(mgr) == 1;
    if (!n->stopping && ready_now && !n->ready) {
        change = "READY=1";
        n->ready = 1;
    } else if (!n->stopping && !ready_now && n->ready && wanted > 0) {
        snprintf(reload, sizeof reload, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)(bgl_monotonic_ns() / 1000));
        change = reload;
        n->ready = 0;
    }
    if (change)
        sendf(n, "%s\nSTATUS=%s", change, status);
    else if (strcmp(status, n->status) != 0)
        sendf(n, "STATUS=%s", status);
    memcpy(n->status, status, sizeof status);
}

static void on_eval(bgl_timer *timer, void *userdata)
{
    (void)timer;
    evaluate(userdata);
}

static void schedule_eval(bgl_notify *n)
{
    if (bgl_timer_is_active(n->eval) != 1)
        bgl_timer_start(n->eval, 0, 0);
}

static void observed_changed(void *ud)
{
    schedule_eval(ud);
}

static void observed_stopping(const char *owner, int64_t timeout_ns, void *ud)
{
    bgl_notify *n = ud;
    if (owner)
        return;   /* one owner (an add-on) stopping is not the process stopping */
    int again = n->stopping && !n->stop_done;
    n->stopping = 1;
    n->stop_done = 0;
    n->ready = 0;   /* READY=1 again once services are wanted and running again */
    if (!again)
        bgl_notify_send(n, "STOPPING=1");
    uint64_t now = 0;
    bgl_loop_now(n->loop, &now);
    /* The manager's own bound of that stop: beyond it the stop is stuck. */
    uint64_t bound = 0;
    bgl_services_stop_bound(n->mgr, NULL, timeout_ns, &bound);
    uint64_t until = add_sat(now, bound);
    /* A second stop (a cancel-at-once deadline) may only shorten it. */
    if (!again || until < n->extend_until_ns)
        n->extend_until_ns = until;
    if (bgl_services_active(n->mgr, NULL) > 0) {
        send_extend(n);
        bgl_timer_start(n->extend, EXTEND_PERIOD_NS, EXTEND_PERIOD_NS);
    }
    schedule_eval(n);
}

static void observed_gone(void *ud)
{
    bgl_notify *n = ud;
    n->mgr = NULL;
    bgl_timer_stop(n->eval);
    bgl_timer_stop(n->extend);
}

static const bgli_svc_observer observer = {
    observed_changed,
    observed_stopping,
    observed_gone,
};

int bgl_notify_attach(bgl_notify *n, bgl_services *mgr)
{
    if (!n)
        return -EINVAL;
    if (mgr && mgr->observer && mgr->observer_ud != n)
        return -EBUSY;
    if (n->mgr && n->mgr != mgr) {
        n->mgr->observer = NULL;
        n->mgr->observer_ud = NULL;
        observed_gone(n);
    }
    if (mgr) {
        mgr->observer = &observer;
        mgr->observer_ud = n;
        n->mgr = mgr;
        schedule_eval(n);
    }
    return 0;
}

/* ---- life ------------------------------------------------------------------- */

int bgl_notify_new(bgl_loop *loop, const char *address, bgl_notify **out)
{
    if (!loop || !out)
        return -EINVAL;
    struct sockaddr_un sa;
    socklen_t len = 0;
    int r = parse_address(address, &sa, &len);
    if (r < 0)
        return r;
    bgl_notify *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->loop = loop;
    n->fd = -1;
    n->sa = sa;
    n->sa_len = len;
    if (!(n->address = strdup(address))) {
        free(n);
        return -ENOMEM;
    }
    if ((r = bgl_timer_new(loop, on_watchdog, n, &n->watchdog)) < 0 ||
        (r = bgl_timer_new(loop, on_eval, n, &n->eval)) < 0 ||
        (r = bgl_timer_new(loop, on_extend, n, &n->extend)) < 0 || (r = open_socket()) < 0) {
        bgl_notify_free(n);
        return r;
    }
    n->fd = r;
    *out = n;
    return 0;
}

static int refuse(char *why, size_t size, int err, const char *fmt, ...)
    BGL_PRINTF(4, 5);
static int refuse(char *why, size_t size, int err, const char *fmt, ...)
{
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* A decimal number, digits only: 0 and *out, -EINVAL, -ERANGE. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s)
        return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int bgl_notify_new_from_env(bgl_loop *loop, bgl_notify **out, char *why, size_t why_size)
{
    refuse(why, why_size, 0, "%s", "");
    if (!loop || !out)
        return refuse(why, why_size, -EINVAL, "no loop or no place for the notifier");
    const char *address = getenv("NOTIFY_SOCKET");
    if (!address || !*address)
        return refuse(why, why_size, -ENOENT, "NOTIFY_SOCKET is not set");
    struct sockaddr_un sa;
    socklen_t len;
    int r = parse_address(address, &sa, &len);
    if (r == -ENOTSUP)
        return refuse(why, why_size, r, "NOTIFY_SOCKET='%.80s': systemd's notification "
                      "socket does not exist on Windows", address);
    if (r == -EAFNOSUPPORT)
        return refuse(why, why_size, r, "NOTIFY_SOCKET='%.80s': only AF_UNIX sockets "
                      "(\"/path\" or \"@name\") are supported", address);
    if (r == -ENAMETOOLONG)
        return refuse(why, why_size, r, "NOTIFY_SOCKET='%.80s': longer than a unix socket "
                      "address (%zu bytes)", address, sizeof sa.sun_path - 1);
    if (r < 0)
        return refuse(why, why_size, r, "NOTIFY_SOCKET='%.80s': not an absolute path or "
                      "@abstract name", address);

    uint64_t usec = 0;
    const char *wd = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");
    const char *note = "";
    char note_buf[160];
    if (wd) {
        r = parse_u64(wd, &usec);
        if (r == 0 && usec > BGL_NOTIFY_WATCHDOG_MAX_USEC)
            r = -ERANGE;
        if (r == -ERANGE)
            return refuse(why, why_size, r, "WATCHDOG_USEC='%.40s': too large (at most %llu)",
                          wd, (unsigned long long)BGL_NOTIFY_WATCHDOG_MAX_USEC);
        if (r < 0 || usec < 2)
            return refuse(why, why_size, -EINVAL, "WATCHDOG_USEC='%.40s': not a whole number "
                          "of microseconds >= 2", wd);
    }
    if (wpid) {
        uint64_t pid = 0;
        r = parse_u64(wpid, &pid);
        if (r < 0 || pid == 0 || pid > (uint64_t)INT32_MAX)
            return refuse(why, why_size, -EINVAL, "WATCHDOG_PID='%.40s': not a process id",
                          wpid);
        if ((pid_t)pid != getpid() && usec) {
            snprintf(note_buf, sizeof note_buf, "WATCHDOG_PID=%llu is not this process (%ld): "
                     "no watchdog pings", (unsigned long long)pid, (long)getpid());
            note = note_buf;
            usec = 0;
        }
    }
    bgl_notify *n;
    if ((r = bgl_notify_new(loop, address, &n)) < 0)
        return refuse(why, why_size, r, "NOTIFY_SOCKET='%.80s': %s", address, bgl_strerror(r));
    if (usec && (r = bgl_notify_set_watchdog(n, usec)) < 0) {
        bgl_notify_free(n);
        return refuse(why, why_size, r, "WATCHDOG_USEC='%.40s': %s", wd, bgl_strerror(r));
    }
    refuse(why, why_size, 0, "%s", note);
    *out = n;
    return 0;
}

int bgl_notify_free(bgl_notify *n)
{
    if (!n)
        return -EINVAL;
    bgl_notify_attach(n, NULL);
    bgl_timer_free(n->watchdog);
    bgl_timer_free(n->eval);
    bgl_timer_free(n->extend);
#ifndef _WIN32
    if (n->fd >= 0)
        close(n->fd);
#endif
    free(n->address);
    free(n);
    return 0;
}

int bgl_notify_get_stats(const bgl_notify *n, bgl_notify_stats *stats)
{
    if (!n || !stats)
        return -EINVAL;
    memset(stats, 0, sizeof *stats);
    stats->sent = n->sent;
    stats->failed = n->failed;
    stats->last_error = n->last_error;
    stats->watchdog_usec = n->watchdog_usec;
    stats->pings = n->pings;
    stats->ready = n->ready;
    stats->stopping = n->stopping;
    return 0;
}

const char *bgl_notify_address(const bgl_notify *n)
{
    return n ? n->address : NULL;
}
