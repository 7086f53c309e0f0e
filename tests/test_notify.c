/* The systemd notifier: real AF_UNIX datagram sockets (path and abstract)
 * receive what the notifier sends, in order; the service manager's
 * transitions drive READY/STATUS/RELOADING/STOPPING/EXTEND_TIMEOUT_USEC;
 * watchdog pings come from the loop and stop while it is blocked; a bad
 * environment is refused with a clear errno and text. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lifecycle-harness.h"

TestSuite(notify, .timeout = BGL_TEST_TIMEOUT);

/* ---- a receiving socket ------------------------------------------------------ */

typedef struct receiver {
    int fd;
    char address[108];   /* as NOTIFY_SOCKET spells it */
    char dir[64];
} receiver;

static void receiver_open(receiver *r, int abstract)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    cr_assert_geq(r->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    if (abstract) {
        static int seq;
        snprintf(r->address, sizeof r->address, "@bgloop-notify-test-%ld-%d", (long)getpid(),
                 ++seq);
        size_t n = strlen(r->address);
        memcpy(sa.sun_path + 1, r->address + 1, n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        snprintf(r->dir, sizeof r->dir, "/tmp/bgloop-notify-XXXXXX");
        cr_assert_not_null(mkdtemp(r->dir));
        snprintf(r->address, sizeof r->address, "%s/notify", r->dir);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", r->address);
        len = (socklen_t)sizeof sa;
    }
    cr_assert_eq(bind(r->fd, (struct sockaddr *)&sa, len), 0, "bind %s: %s", r->address,
                 strerror(errno));
}

static void receiver_close(receiver *r)
{
    close(r->fd);
    if (r->dir[0]) {
        unlink(r->address);
        rmdir(r->dir);
    }
}

/* The next datagram, or "" when none is waiting. */
static const char *next_msg(receiver *r)
{
    static char buf[512];
    ssize_t n = recv(r->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Every waiting datagram, joined by " | ", pings left out (they are counted
 * into *pings when pings is not NULL). */
static const char *drain_msgs(receiver *r, int *pings)
{
    static char all[4096];
    all[0] = '\0';
    for (;;) {
        const char *m = next_msg(r);
        if (!*m)
            break;
        if (strcmp(m, "WATCHDOG=1") == 0) {
            if (pings)
                ++*pings;
            continue;
        }
        size_t len = strlen(all);
        snprintf(all + len, sizeof all - len, "%s%s", len ? " | " : "", m);
    }
    return all;
}

static int count_pings(receiver *r)
{
    int pings = 0;
    const char *other = drain_msgs(r, &pings);
    cr_assert_str_empty(other, "unexpected datagrams: %s", other);
    return pings;
}

/* ---- sending ------------------------------------------------------------------ */

static void send_in_order(int abstract)
{
    receiver r;
    receiver_open(&r, abstract);
    bgl_loop *loop = new_loop();
    bgl_notify *n;
    OK(bgl_notify_new(loop, r.address, &n));
    cr_assert_str_eq(bgl_notify_address(n), r.address);
    OK(bgl_notify_send(n, "STATUS=one"));
    OK(bgl_notify_send(n, "STATUS=two\nX_MORE=1"));
    OK(bgl_notify_send(n, "STATUS=three"));
    cr_assert_str_eq(next_msg(&r), "STATUS=one");
    cr_assert_str_eq(next_msg(&r), "STATUS=two\nX_MORE=1");
    cr_assert_str_eq(next_msg(&r), "STATUS=three");
    cr_assert_str_empty(next_msg(&r));
    bgl_notify_stats st;
    OK(bgl_notify_get_stats(n, &st));
    cr_assert_eq(st.sent, 3);
    cr_assert_eq(st.failed, 0);
    OK(bgl_notify_free(n));
    free_loop(loop);
    receiver_close(&r);
}

Test(notify, path_socket_receives_in_order) { send_in_order(0); }
Test(notify, abstract_socket_receives_in_order) { send_in_order(1); }

Test(notify, nobody_listening_is_counted_not_fatal)
{
    bgl_loop *loop = new_loop();
    bgl_notify *n;
    OK(bgl_notify_new(loop, "/nonexistent-bgloop-dir/notify", &n));
    int rc = bgl_notify_send(n, "READY=1");
    cr_assert(rc == -ENOENT || rc == -ECONNREFUSED, "got %s", bgl_strerror(rc));
    bgl_notify_stats st;
    OK(bgl_notify_get_stats(n, &st));
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.last_error, rc);
    OK(bgl_notify_free(n));
    free_loop(loop);
}

Test(notify, bad_arguments)
{
    bgl_loop *loop = new_loop();
    bgl_notify *n = NULL;
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    EXPECT_RC(bgl_notify_new(NULL, "/x", &n), -EINVAL);
    EXPECT_RC(bgl_notify_new(loop, NULL, &n), -EINVAL);
    EXPECT_RC(bgl_notify_new(loop, "", &n), -EINVAL);
    EXPECT_RC(bgl_notify_new(loop, "relative/path", &n), -EINVAL);
    EXPECT_RC(bgl_notify_new(loop, "@", &n), -EINVAL);
    EXPECT_RC(bgl_notify_new(loop, "vsock:2:1234", &n), -EAFNOSUPPORT);
    EXPECT_RC(bgl_notify_new(loop, longpath, &n), -ENAMETOOLONG);
    longpath[0] = '@';
    EXPECT_RC(bgl_notify_new(loop, longpath, &n), -ENAMETOOLONG);
    cr_assert_null(n);
    OK(bgl_notify_new(loop, "/tmp/x", &n));
    EXPECT_RC(bgl_notify_send(n, ""), -EINVAL);
    EXPECT_RC(bgl_notify_send(n, NULL), -EINVAL);
    EXPECT_RC(bgl_notify_send(NULL, "READY=1"), -EINVAL);
    EXPECT_RC(bgl_notify_set_watchdog(n, 1), -EINVAL);
    EXPECT_RC(bgl_notify_set_watchdog(n, BGL_NOTIFY_WATCHDOG_MAX_USEC + 1), -ERANGE);
    EXPECT_RC(bgl_notify_attach(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_notify_free(NULL), -EINVAL);
    cr_assert_null(bgl_notify_address(NULL));
    OK(bgl_notify_free(n));
    free_loop(loop);
}

/* ---- the environment ------------------------------------------------------------ */

static int from_env(const char *sock, const char *usec, const char *pid, char *why,
                    uint64_t *wd)
{
    sock ? setenv("NOTIFY_SOCKET", sock, 1) : unsetenv("NOTIFY_SOCKET");
    usec ? setenv("WATCHDOG_USEC", usec, 1) : unsetenv("WATCHDOG_USEC");
    pid ? setenv("WATCHDOG_PID", pid, 1) : unsetenv("WATCHDOG_PID");
    bgl_loop *loop = new_loop();
    bgl_notify *n = NULL;
    int rc = bgl_notify_new_from_env(loop, &n, why, 200);
    if (rc == 0) {
        bgl_notify_stats st;
        OK(bgl_notify_get_stats(n, &st));
        *wd = st.watchdog_usec;
        OK(bgl_notify_free(n));
    } else {
        cr_assert_null(n);
    }
    free_loop(loop);
    return rc;
}

Test(notify, environment)
{
    char why[200], self[32], other[32];
    uint64_t wd = 0;
    snprintf(self, sizeof self, "%ld", (long)getpid());
    snprintf(other, sizeof other, "%ld", (long)getpid() + 1);

    EXPECT_RC(from_env(NULL, NULL, NULL, why, &wd), -ENOENT);
    cr_assert_str_eq(why, "NOTIFY_SOCKET is not set");
    EXPECT_RC(from_env("", NULL, NULL, why, &wd), -ENOENT);
    EXPECT_RC(from_env("notify", NULL, NULL, why, &wd), -EINVAL);
    cr_assert(strstr(why, "NOTIFY_SOCKET='notify'"), "%s", why);
    EXPECT_RC(from_env("vsock:1:2", NULL, NULL, why, &wd), -EAFNOSUPPORT);
    cr_assert(strstr(why, "AF_UNIX"), "%s", why);
    char longpath[200];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    EXPECT_RC(from_env(longpath, NULL, NULL, why, &wd), -ENAMETOOLONG);
    cr_assert(strstr(why, "longer than"), "%s", why);

    OK(from_env("/run/x", NULL, NULL, why, &wd));
    cr_assert_str_empty(why);
    cr_assert_eq(wd, 0);
    OK(from_env("@abstract", "30000000", NULL, why, &wd));
    cr_assert_eq(wd, 30000000);
    OK(from_env("/run/x", "30000000", self, why, &wd));
    cr_assert_eq(wd, 30000000);
    OK(from_env("/run/x", "30000000", other, why, &wd));
    cr_assert_eq(wd, 0);
    cr_assert(strstr(why, "is not this process"), "%s", why);

    const char *bad_usec[] = {"", "abc", "12x", "-5", " 5", "0", "1", "1.5"};
    for (size_t i = 0; i < sizeof bad_usec / sizeof *bad_usec; i++) {
        EXPECT_RC(from_env("/run/x", bad_usec[i], NULL, why, &wd), -EINVAL);
        cr_assert(strstr(why, "WATCHDOG_USEC="), "%s", why);
    }
    EXPECT_RC(from_env("/run/x", "99999999999999999999999", NULL, why, &wd), -ERANGE);
    EXPECT_RC(from_env("/run/x", "18446744073709551615", NULL, why, &wd), -ERANGE);
    cr_assert(strstr(why, "too large"), "%s", why);
    const char *bad_pid[] = {"", "x", "0", "-1", "99999999999"};
    for (size_t i = 0; i < sizeof bad_pid / sizeof *bad_pid; i++) {
        EXPECT_RC(from_env("/run/x", "30000000", bad_pid[i], why, &wd), -EINVAL);
        cr_assert(strstr(why, "WATCHDOG_PID="), "%s", why);
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* ---- the watchdog ----------------------------------------------------------------- */

typedef struct blocker {
    fake_clock *clk;
    receiver *r;
    int pings_while_blocked;
} blocker;

/* A callback that keeps the loop busy for 100 ms of its clock. */
static void block_loop(void *ud)
{
    blocker *b = ud;
    b->clk->now += 100 * MS;
    b->pings_while_blocked = count_pings(b->r);
}

Test(notify, watchdog_pings_stop_while_the_loop_is_blocked)
{
    receiver r;
    receiver_open(&r, 0);
    world w;
    world_init(&w);
    bgl_notify *n;
    OK(bgl_notify_new(w.loop, r.address, &n));
    OK(bgl_notify_set_watchdog(n, 20000));   /* 20 ms: a ping every 10 ms */
    settle(&w);
    cr_assert_eq(count_pings(&r), 0, "no ping before half the interval");
    for (int i = 0; i < 5; i++) {
        advance(&w, 10 * MS);
        cr_assert_eq(count_pings(&r), 1, "one ping per half interval (step %d)", i);
    }
    blocker b = {&w.clk, &r, -1};
    OK(bgl_loop_call_soon(w.loop, block_loop, &b));
    settle(&w);
    cr_assert_eq(b.pings_while_blocked, 0);
    /* The timer fell behind: one ping when the loop runs again, not ten. */
    cr_assert_eq(count_pings(&r), 1);
    for (int i = 0; i < 3; i++) {
        advance(&w, 10 * MS);
        cr_assert_eq(count_pings(&r), 1, "pings resume (step %d)", i);
    }
    OK(bgl_notify_set_watchdog(n, 0));
    advance(&w, 50 * MS);
    cr_assert_eq(count_pings(&r), 0, "off");
    bgl_notify_stats st;
    OK(bgl_notify_get_stats(n, &st));
    cr_assert_eq(st.pings, 9);
    OK(bgl_notify_free(n));
    world_free(&w);
    receiver_close(&r);
}

/* The same on the real clock: pings across iterations, none during a
 * callback that sleeps, pings again after it. */
static void sleep_in_callback(void *ud)
{
    blocker *b = ud;
    sleep_ns(60 * MS);
    b->pings_while_blocked = count_pings(b->r);
}

/* Run iterations until `want` pings arrived; the guard (loop time) only
 * stops a test whose pings never come. */
static int run_until_pings(bgl_loop *loop, receiver *r, int want)
{
    OK(bgl_loop_update_time(loop));
    uint64_t start = loop_now(loop);
    int pings = 0;
    while (pings < want && loop_now(loop) - start < 20 * SEC) {
        int rc = bgl_loop_run_once(loop, 5 * MS);
        cr_assert_geq(rc, 0);
        OK(bgl_loop_update_time(loop));
        pings += count_pings(r);
    }
    return pings;
}

Test(notify, watchdog_on_the_real_clock)
{
    receiver r;
    receiver_open(&r, 1);
    bgl_loop *loop = new_loop();
    bgl_notify *n;
    OK(bgl_notify_new(loop, r.address, &n));
    OK(bgl_notify_set_watchdog(n, 20000));
    cr_assert_geq(run_until_pings(loop, &r, 3), 3);
    blocker b = {NULL, &r, -1};
    OK(bgl_loop_call_soon(loop, sleep_in_callback, &b));
    cr_assert_geq(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(b.pings_while_blocked, 0);
    cr_assert_geq(run_until_pings(loop, &r, 3), 3, "pings resume");
    bgl_notify_stats st;
    OK(bgl_notify_get_stats(n, &st));
    cr_assert_eq(st.failed, 0);
    OK(bgl_notify_free(n));
    free_loop(loop);
    receiver_close(&r);
}

/* ---- following the service manager ---------------------------------------------- */

typedef struct nworld {
    world w;
    receiver r;
    bgl_notify *n;
} nworld;

static void nworld_init(nworld *nw, int abstract)
{
    receiver_open(&nw->r, abstract);
    world_init(&nw->w);
    OK(bgl_notify_new(nw->w.loop, nw->r.address, &nw->n));
    OK(bgl_notify_attach(nw->n, nw->w.mgr));
}

static void nworld_free(nworld *nw)
{
    OK(bgl_notify_free(nw->n));
    world_free(&nw->w);
    receiver_close(&nw->r);
}

/* The datagrams end with `want` (summaries may come before it). */
#define EXPECT_LAST(nw, want)                                                  \
    do {                                                                       \
        const char *got_ = drain_msgs(&(nw)->r, NULL);                         \
        size_t gl_ = strlen(got_), wl_ = strlen(want);                         \
        cr_assert(gl_ >= wl_ && strcmp(got_ + gl_ - wl_, (want)) == 0,         \
                  "datagrams: got \"%s\", expected it to end with \"%s\"", got_, (want)); \
    } while (0)

#define EXPECT_MSGS(nw, want)                                                  \
    do {                                                                       \
        const char *got_ = drain_msgs(&(nw)->r, NULL);                         \
        cr_assert_str_eq(got_, (want), "datagrams: got \"%s\", expected \"%s\"", got_, (want)); \
    } while (0)

static void ready_then_stop(int abstract)
{
    nworld nw;
    nworld_init(&nw, abstract);
    world *w = &nw.w;
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=0/0 services running");
    fake_svc *a = add(w, "a", NULL), *b = add(w, "b", DEPS("a")), *c = add(w, "c", NULL);
    OK(bgl_services_start(w->mgr, NULL));
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=0/3 services running");
    ready(a);
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=1/3 services running");
    ready(c);
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=2/3 services running");
    ready(b);
    settle(w);
    EXPECT_MSGS(&nw, "READY=1\nSTATUS=3/3 services running");
    settle(w);
    EXPECT_MSGS(&nw, "");

    /* A slow stop: b ignores the stop request until its timeout (5 s)
     * passes and it is cancelled. */
    b->exit_on_stop = 0;
    uint64_t bound = 0;
    OK(bgl_services_stop_bound(w->mgr, NULL, -1, &bound));
    OK(bgl_services_stop(w->mgr, NULL));
    const char *first = drain_msgs(&nw.r, NULL);
    unsigned long long extend = 0;
    cr_assert_eq(sscanf(first, "STOPPING=1 | EXTEND_TIMEOUT_USEC=%llu", &extend), 1, "%s",
                 first);
    /* The manager's bound of the stop, not a guess of the notifier. */
    cr_assert_gt(bound, 0);
    cr_assert_eq(extend, (bound + 999) / 1000);
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=3/3 services running, stopping | STATUS=1/2 services running, stopping");
    advance(w, SEC);
    const char *again = drain_msgs(&nw.r, NULL);
    unsigned long long extend2 = 0;
    cr_assert_eq(sscanf(again, "EXTEND_TIMEOUT_USEC=%llu", &extend2), 1, "%s", again);
    cr_assert_eq(extend2, extend - 1000000ull, "the same bound, a second later");
    advance(w, 5 * SEC);   /* the stop timeout: cancelled, then everything ends */
    EXPECT_LAST(&nw, "STATUS=0/1 services running, 1 failed");
    advance(w, 2 * SEC);
    EXPECT_MSGS(&nw, "");   /* the stop is over: no more extensions */
    bgl_notify_stats st;
    OK(bgl_notify_get_stats(nw.n, &st));
    cr_assert_eq(st.stopping, 1);
    cr_assert_eq(st.failed, 0);
    nworld_free(&nw);
}

Test(notify, ready_status_stopping_extend_path) { ready_then_stop(0); }
Test(notify, ready_status_stopping_extend_abstract) { ready_then_stop(1); }

Test(notify, restart_cycle_reloads_then_ready)
{
    nworld nw;
    nworld_init(&nw, 0);
    world *w = &nw.w;
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.restart = BGL_RESTART_ALWAYS;
    fake_svc *a = add_full(w, "a", "addon", NULL, &cfg);
    fake_svc *b = add_full(w, "b", "other", NULL, NULL);
    a->ready_on_start = b->ready_on_start = 1;
    OK(bgl_services_start(w->mgr, NULL));
    settle(w);
    EXPECT_LAST(&nw, "READY=1\nSTATUS=2/2 services running");

    /* a ends on its own and is restarted after its delay. */
    OK(bgl_service_exited(a->svc, 0, NULL));
    settle(w);
    const char *msgs = drain_msgs(&nw.r, NULL);
    unsigned long long mono = 0;
    cr_assert_eq(sscanf(msgs, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=1/2 services running",
                        &mono), 1, "%s", msgs);
    cr_assert_gt(mono, 0);
    advance(w, SEC);
    EXPECT_MSGS(&nw, "READY=1\nSTATUS=2/2 services running");

    /* An owner stopped and started again (an add-on reloaded). */
    OK(bgl_services_stop(w->mgr, "other"));
    settle(w);
    EXPECT_MSGS(&nw, "STATUS=1/1 services running");
    b->ready_on_start = 0;
    OK(bgl_services_start(w->mgr, "other"));
    settle(w);
    msgs = drain_msgs(&nw.r, NULL);
    cr_assert(strncmp(msgs, "RELOADING=1\n", 12) == 0, "%s", msgs);
    cr_assert(strstr(msgs, "STATUS=1/2 services running"), "%s", msgs);
    ready(b);
    settle(w);
    EXPECT_MSGS(&nw, "READY=1\nSTATUS=2/2 services running");
    nworld_free(&nw);
}

Test(notify, stopped_then_started_again_is_ready_again)
{
    nworld nw;
    nworld_init(&nw, 1);
    world *w = &nw.w;
    fake_svc *a = add(w, "a", NULL);
    a->ready_on_start = 1;
    OK(bgl_services_start(w->mgr, NULL));
    settle(w);
    EXPECT_LAST(&nw, "READY=1\nSTATUS=1/1 services running");
    OK(bgl_services_stop(w->mgr, NULL));
    settle(w);
    /* Nothing slow: STOPPING=1 and the bound, then the summary. */
    const char *msgs = drain_msgs(&nw.r, NULL);
    cr_assert(strncmp(msgs, "STOPPING=1 | EXTEND_TIMEOUT_USEC=", 33) == 0, "%s", msgs);
    cr_assert(strstr(msgs, "STATUS=0/0 services running"), "%s", msgs);
    OK(bgl_services_start(w->mgr, NULL));
    settle(w);
    EXPECT_LAST(&nw, "READY=1\nSTATUS=1/1 services running");
    nworld_free(&nw);
}

Test(notify, one_notifier_per_manager_and_detach_on_free)
{
    world w;
    world_init(&w);
    bgl_notify *n1, *n2;
    OK(bgl_notify_new(w.loop, "/tmp/none", &n1));
    OK(bgl_notify_new(w.loop, "/tmp/none", &n2));
    OK(bgl_notify_attach(n1, w.mgr));
    OK(bgl_notify_attach(n1, w.mgr));
    EXPECT_RC(bgl_notify_attach(n2, w.mgr), -EBUSY);
    OK(bgl_notify_attach(n1, NULL));
    OK(bgl_notify_attach(n2, w.mgr));
    /* The manager goes first: the notifier is detached, not left dangling. */
    OK(bgl_services_free(w.mgr));
    OK(bgl_notify_attach(n2, NULL));
    OK(bgl_notify_free(n1));
    OK(bgl_notify_free(n2));
    free_loop(w.loop);
}
