/* helpers.h - shared helpers of the Criterion loop tests.
 *
 * Every test file is built twice, once per backend; BGL_TEST_BACKEND is the
 * backend's name ("epoll" or "poll") and BGL_TEST_POLL is 1 in the poll
 * build, so a test can accept what only one backend does (bgl_loop_get_fd()
 * is -EOPNOTSUPP with poll).
 *
 * Criterion runs each test in its own worker process, and that worker has a
 * second (Criterion) thread.  Tests that need a single-threaded process (a
 * signal sent to the whole process must reach the thread that blocked it)
 * run their body in a fork()ed child: see run_in_child().
 *
 * Windows (mingw-w64, run under wine): the loop watches sockets only, so a
 * test's "pipe" or socket pair is a connected pair of loopback TCP sockets,
 * and read(), write() and close() on a test's descriptors are recv(),
 * send() and closesocket().  The signals a test can raise() there are
 * SIGINT, SIGBREAK and SIGTERM (see bgl_signal_new()): SIGUSR1 and SIGUSR2
 * stand for SIGBREAK and SIGINT.  What has no Windows equivalent (fork(),
 * kill() of another process, signal masks, setrlimit()) is skipped with
 * the reason printed.
 */
#ifndef BGL_TESTS_HELPERS_H
#define BGL_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <bgloop/bgloop.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#  include <windows.h>
#  include <io.h>
#else
#  include <dirent.h>
#  include <fcntl.h>
#  include <poll.h>
#  include <sys/socket.h>
#  include <sys/time.h>
#  include <sys/wait.h>
#  include <unistd.h>
#endif

#ifndef BGL_TEST_BACKEND
#  define BGL_TEST_BACKEND "epoll"
#endif
#define BGL_TEST_POLL (strcmp(BGL_TEST_BACKEND, "poll") == 0)

/* Generous: a hang must fail the test, but valgrind and a busy shared
 * machine must not. */
#define BGL_TEST_TIMEOUT 240.0

#define MS (INT64_C(1000000))
#define SEC (INT64_C(1000000000))

/* Assert that a bgl_ call returned exactly `want`, naming the call and the
 * error text on failure. */
#define EXPECT_RC(call, want)                                                   \
    do {                                                                        \
        int rc_ = (call);                                                       \
        cr_assert_eq(rc_, (want), "%s returned %d (%s), expected %d (%s)", #call, \
                     rc_, bgl_strerror(rc_), (int)(want), bgl_strerror(want));  \
    } while (0)
#define OK(call) EXPECT_RC(call, 0)

/* ---- counting callbacks -------------------------------------------------- */

/* Each of these adds one to `counted`; tests reset it and compare. */
static int counted;

static inline void count_call(void *ud)
{
    (void)ud;
    counted++;
}

static inline void count_timer(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    counted++;
}

static inline void count_signal(bgl_signal *s, int signo, void *ud)
{
    (void)s, (void)signo, (void)ud;
    counted++;
}

/* ---- recording callbacks ------------------------------------------------ */

/* Callbacks append ids here; tests compare the whole sequence. */
typedef struct recorder {
    int ids[4096];
    int n;
} recorder;

static inline void rec_push(recorder *r, int id)
{
    cr_assert_lt(r->n, (int)(sizeof r->ids / sizeof r->ids[0]), "recorder full");
    r->ids[r->n++] = id;
}

/* The userdata of a recording callback: which recorder, which id. */
typedef struct rec_item {
    recorder *r;
    int id;
} rec_item;

static inline void rec_cb(void *userdata)
{
    rec_item *it = userdata;
    rec_push(it->r, it->id);
}

static inline void rec_timer_cb(bgl_timer *t, void *userdata)
{
    (void)t;
    rec_cb(userdata);
}

static inline void rec_format(const int *ids, int n, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && off + 16 < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%d", i ? "," : "", ids[i]);
}

/* Assert that the recorder holds exactly `want` (printed on mismatch). */
#define EXPECT_SEQ(rec, ...)                                                    \
    do {                                                                        \
        const int want_[] = {__VA_ARGS__};                                      \
        expect_seq_((rec), want_, (int)(sizeof want_ / sizeof want_[0]), #rec); \
    } while (0)

static inline void expect_seq_(const recorder *r, const int *want, int nwant, const char *what)
{
    char got[512], exp[512];
    rec_format(r->ids, r->n, got, sizeof got);
    rec_format(want, nwant, exp, sizeof exp);
    cr_assert(r->n == nwant && memcmp(r->ids, want, sizeof(int) * (size_t)nwant) == 0,
              "%s: got [%s], expected [%s]", what, got, exp);
}

/* ---- loops --------------------------------------------------------------- */

static inline bgl_loop *new_loop(void)
{
    bgl_loop *loop = NULL;
    OK(bgl_loop_new(&loop));
    cr_assert_not_null(loop);
    return loop;
}

/* Every test ends with this: the loop must be clean (no sources left). */
static inline void free_loop(bgl_loop *loop)
{
    OK(bgl_loop_free(loop));
}

/* A settable clock for bgl_loop_set_clock(): deterministic timers. */
typedef struct fake_clock {
    uint64_t now;
} fake_clock;

static inline uint64_t fake_clock_read(void *userdata)
{
    return ((fake_clock *)userdata)->now;
}

static inline void use_fake_clock(bgl_loop *loop, fake_clock *clk, uint64_t start)
{
    clk->now = start;
    OK(bgl_loop_set_clock(loop, fake_clock_read, clk));
    OK(bgl_loop_update_time(loop));
}

static inline uint64_t loop_now(bgl_loop *loop)
{
    uint64_t now = 0;
    OK(bgl_loop_now(loop, &now));
    return now;
}

/* ---- descriptors ---------------------------------------------------------- */

#ifdef _WIN32
#define BGL_TEST_NOFD INVALID_SOCKET
typedef ULONG nfds_t;

/* The last Winsock error as an errno value (the ones tests look at). */
static inline int test_wsa_errno(void)
{
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAENOTSOCK: return EBADF;
    case WSAECONNRESET: return ECONNRESET;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAESHUTDOWN: return EPIPE;
    default: return EIO;
    }
}

static inline ptrdiff_t test_read(bgl_fd fd, void *buf, size_t n)
{
    int r = recv(fd, (char *)buf, (int)n, 0);
    if (r < 0)
        errno = test_wsa_errno();
    return r;
}

static inline ptrdiff_t test_write(bgl_fd fd, const void *buf, size_t n)
{
    int r = send(fd, (const char *)buf, (int)n, 0);
    if (r < 0)
        errno = test_wsa_errno();
    return r;
}

static inline int test_close(bgl_fd fd)
{
    if (closesocket(fd) == 0)
        return 0;
    errno = test_wsa_errno();
    return -1;
}
#define read(fd, buf, n) test_read(fd, buf, n)
#define write(fd, buf, n) test_write(fd, buf, n)
#define close(fd) test_close(fd)

/* A connected pair of non-blocking loopback TCP sockets. */
static inline void make_socketpair(bgl_fd fds[2])
{
    SOCKET lst = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    cr_assert_neq(lst, INVALID_SOCKET, "socket: %d", WSAGetLastError());
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof a;
    cr_assert(bind(lst, (struct sockaddr *)&a, sizeof a) == 0 && listen(lst, 1) == 0 &&
                  getsockname(lst, (struct sockaddr *)&a, &len) == 0,
              "listen: %d", WSAGetLastError());
    fds[1] = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    cr_assert(fds[1] != INVALID_SOCKET && connect(fds[1], (struct sockaddr *)&a, sizeof a) == 0,
              "connect: %d", WSAGetLastError());
    fds[0] = accept(lst, NULL, NULL);
    cr_assert_neq(fds[0], INVALID_SOCKET, "accept: %d", WSAGetLastError());
    closesocket(lst);
    u_long one = 1;
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    cr_assert(ioctlsocket(fds[0], FIONBIO, &one) == 0 && ioctlsocket(fds[1], FIONBIO, &one) == 0);
}

/* No pipes to watch on Windows: fds[0] reads what fds[1] writes. */
static inline void make_pipe(bgl_fd fds[2])
{
    make_socketpair(fds);
}

/* Sockets are Winsock's: started once for the test process. */
__attribute__((constructor)) static void test_winsock_start(void)
{
    WSADATA data;
    WSAStartup(MAKEWORD(2, 2), &data);
}

/* kill(getpid(), signo) of the tests: the signal to this process. */
static inline int test_kill_self(int signo)
{
    return raise(signo);
}

#define SKIP_ON_WINDOWS(why) cr_skip_test("not on Windows: %s", why)
#ifndef SIGUSR1
#  define SIGUSR1 SIGBREAK
#  define SIGUSR2 SIGINT
#endif
#else /* POSIX */
#define BGL_TEST_NOFD (-1)
#define SKIP_ON_WINDOWS(why) ((void)0)

static inline void make_pipe(int fds[2])
{
    cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0, "pipe2: %s", strerror(errno));
}

static inline void make_socketpair(int fds[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0,
                 "socketpair: %s", strerror(errno));
}
#endif

static inline void write_byte(bgl_fd fd)
{
    char c = 'x';
    cr_assert_eq(write(fd, &c, 1), 1, "write: %s", strerror(errno));
}

/* Read everything available (the fd is non-blocking); returns the count. */
static inline int drain(bgl_fd fd)
{
    char buf[256];
    int total = 0;
    ptrdiff_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += (int)n;
    return total;
}

static inline void close_pair(bgl_fd fds[2])
{
    if (fds[0] != BGL_TEST_NOFD)
        close(fds[0]);
    if (fds[1] != BGL_TEST_NOFD)
        close(fds[1]);
    fds[0] = fds[1] = BGL_TEST_NOFD;
}

/* Number of open descriptors of this process (Windows: handles). */
static inline int count_open_fds(void)
{
#ifdef _WIN32
    DWORD n = 0;
    cr_assert(GetProcessHandleCount(GetCurrentProcess(), &n), "GetProcessHandleCount");
    return (int)n;
#else
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d, "opendir /proc/self/fd: %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
#endif
}

/* For tests about what a wait finds, not about interruptions (see EINTR
 * storms): bgl_loop_wait() and poll() resumed after EINTR for what is left
 * of their timeout. */
static inline int wait_resumed(bgl_loop *loop, int64_t timeout_ns)
{
    uint64_t end = timeout_ns > 0 ? bgl_monotonic_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        int r = bgl_loop_wait(loop, timeout_ns);
        if (r != -EINTR)
            return r;
        if (timeout_ns > 0) {
            uint64_t now = bgl_monotonic_ns();
            timeout_ns = now >= end ? 0 : (int64_t)(end - now);
        }
    }
}

static inline int poll_resumed(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    uint64_t end = timeout_ms > 0 ? bgl_monotonic_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
#ifdef _WIN32
        int r = WSAPoll(fds, n, timeout_ms);
        if (r < 0)
            errno = test_wsa_errno();
#else
        int r = poll(fds, n, timeout_ms);
#endif
        if (r >= 0 || errno != EINTR)
            return r;
        if (timeout_ms > 0) {
            uint64_t now = bgl_monotonic_ns();
            timeout_ms = now >= end ? 0 : (int)((end - now + 999999u) / 1000000u);
        }
    }
}

/* Is fd readable right now (or within timeout_ms)? */
static inline int fd_readable(bgl_fd fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll_resumed(&p, 1, timeout_ms);
    cr_assert_geq(rc, 0, "poll: %s", strerror(errno));
    return rc > 0 && (p.revents & POLLIN);
}

/* ---- time ------------------------------------------------------------------ */

static inline void sleep_ns(int64_t ns)
{
#ifdef _WIN32
    Sleep((DWORD)((ns + 999999) / 1000000));
#else
    struct timespec ts = {.tv_sec = ns / SEC, .tv_nsec = ns % SEC};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
#endif
}

/* Busy-wait until the monotonic clock moved by at least ns: a callback that
 * certainly spends more than a 1 ns budget. */
static inline void spin_ns(uint64_t ns)
{
    uint64_t start = bgl_monotonic_ns();
    while (bgl_monotonic_ns() - start < ns) {
    }
}

/* ---- EINTR storms ---------------------------------------------------------------- */

/* With BGL_TEST_EINTR_STORM=<microseconds> in the environment, every
 * process of a test program (Criterion's runner and its workers) gets
 * SIGALRM at that interval from an interval timer, caught by a handler that
 * does nothing and is installed without SA_RESTART: every blocking system
 * call of the library and of the tests is interrupted again and again
 * (EINTR), which must change no result.  Children made by fork() get no
 * timer. */
#ifndef _WIN32
static void eintr_storm_handler(int signo)
{
    (void)signo;
}

__attribute__((constructor)) static void eintr_storm_start(void)
{
    const char *env = getenv("BGL_TEST_EINTR_STORM");
    long us = env ? strtol(env, NULL, 10) : 0;
    if (us <= 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = eintr_storm_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: interrupted calls fail with EINTR */
    struct itimerval it = {{us / 1000000, us % 1000000}, {us / 1000000, us % 1000000}};
    if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0) {
        perror("BGL_TEST_EINTR_STORM");
        exit(2);
    }
}
#endif

/* ---- processes --------------------------------------------------------------- */

/* Run fn in a fork()ed, single-threaded child and return its exit status
 * (fn's return value; 128+signo if it died from a signal).  fn reports
 * failures through distinct non-zero return values. */
static inline int run_in_child(int (*fn)(void))
{
#ifdef _WIN32
    (void)fn;
    cr_skip_test("not on Windows: the test runs in a fork()ed child");
    return -1;
#else
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn());
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    cr_assert_eq(w, pid, "waitpid: %s", strerror(errno));
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
#endif
}

#endif /* BGL_TESTS_HELPERS_H */
