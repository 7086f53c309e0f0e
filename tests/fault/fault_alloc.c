/* fault_alloc.c - out of memory everywhere: each scenario (a loop with
 * timers, many descriptors, a signal and deferred and thread-safe calls; a
 * service manager with dependencies, restarts, registry entries and
 * resources; a task registry; a resource stack) first runs counting the
 * library's allocations, then once for every N with the N-th allocation
 * failing (tests/fault/alloc-fail.h).  Each time:
 *   - every public function returns -ENOMEM or succeeds; no crash;
 *   - after the run (allocations working again) everything can still be
 *     stopped and freed, what was accepted happened exactly once, and the
 *     loop stays usable: a new timer fires;
 *   - nothing leaks (the ASan build's leak check at exit; valgrind).
 * Prints TAP: one line per scenario, with the number of failure points. */
#include <bgloop/bgloop.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc-fail.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static const char *scenario_name;
static size_t current_n;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s, allocation %zu failing: ", scenario_name, current_n);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    printf("not ok - %s (allocation %zu failing)\n", scenario_name, current_n);
    exit(1);
}

/* 1 if the call succeeded, 0 if it ran out of memory; anything else is a
 * failure of the test. */
#define ACCEPT(call) accept_((call), #call, __LINE__)
static int accept_(int rc, const char *what, int line)
{
    if (rc >= 0)
        return 1;
    if (rc == -ENOMEM)
        return 0;
    die("line %d: %s returned %d (%s)", line, what, rc, bgl_strerror(rc));
    return 0;
}

/* A call that must succeed (allocations are working again). */
#define MUST(call) must_((call), #call, __LINE__)
static int must_(int rc, const char *what, int line)
{
    if (rc < 0)
        die("line %d: %s returned %d (%s)", line, what, rc, bgl_strerror(rc));
    return rc;
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            die(__VA_ARGS__);                                                  \
    } while (0)

typedef struct fclock {
    uint64_t now;
} fclock;

static uint64_t fclock_read(void *ud)
{
    return ((fclock *)ud)->now;
}

static void fired_cb(bgl_timer *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

/* The loop still works: a new timer fires. */
static void check_usable(bgl_loop *loop)
{
    bgl_timer *t;
    int fired = 0;
    MUST(bgl_timer_new(loop, fired_cb, &fired, &t));
    MUST(bgl_timer_start(t, 0, 0));
    for (int i = 0; i < 10 && !fired; i++)
        MUST(bgl_loop_run_once(loop, 0));
    CHECK(fired == 1, "a timer armed afterwards fired %d times", fired);
    MUST(bgl_timer_free(t));
}

static void settle(bgl_loop *loop)
{
    for (int i = 0; i < 1000; i++)
        if (MUST(bgl_loop_run_once(loop, 0)) == 0)
            return;
    die("the loop did not settle");
}

/* ---- the loop ------------------------------------------------------------------ */

#define N_PIPES 70   /* past the epoll event array and the fd table's first size */
#define N_CALLS 8

typedef struct loop_ctx {
    bgl_loop *loop;
    fclock clk;
    bgl_timer *timers[3];
    int timer_armed[3];
    int timer_fired[3];
    bgl_signal *sig;
    int sig_fired;
    int pipes[N_PIPES][2];
    bgl_io *ios[N_PIPES];
    int io_fired[N_PIPES];
    int calls_made, calls_ran, calls_discarded;
    int inner_made;
} loop_ctx;

static loop_ctx L;

static void call_ran(void *ud)
{
    (void)ud;
    L.calls_ran++;
}

static void call_discarded(void *ud)
{
    (void)ud;
    L.calls_discarded++;
}

static void loop_timer_cb(bgl_timer *t, void *ud)
{
    (void)t;
    int i = (int)(intptr_t)ud;
    L.timer_fired[i]++;
    /* allocating from a callback */
    if (ACCEPT(bgl_loop_call_soon_full(L.loop, call_ran, NULL, call_discarded)))
        L.calls_made++;
}

static void loop_io_cb(bgl_io *io, int fd, unsigned revents, void *ud)
{
    (void)io, (void)revents;
    char buf[16];
    L.io_fired[(intptr_t)ud]++;
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void loop_sig_cb(bgl_signal *s, int signo, void *ud)
{
    (void)s, (void)signo, (void)ud;
    L.sig_fired++;
}

static void loop_work(void)
{
    memset(&L, 0, sizeof L);
    for (int i = 0; i < N_PIPES; i++)
        if (pipe2(L.pipes[i], O_CLOEXEC | O_NONBLOCK) < 0)
            die("pipe2: %s", strerror(errno));
    if (!ACCEPT(bgl_loop_new(&L.loop))) {
        L.loop = NULL;
        return;
    }
    MUST(bgl_loop_set_clock(L.loop, fclock_read, &L.clk));
    for (int i = 0; i < 3; i++)
        if (ACCEPT(bgl_timer_new(L.loop, loop_timer_cb, (void *)(intptr_t)i, &L.timers[i])))
            L.timer_armed[i] = ACCEPT(bgl_timer_start(L.timers[i], (uint64_t)i * MS, i == 0 ? MS : 0));
        else
            L.timers[i] = NULL;
    if (!ACCEPT(bgl_signal_new(L.loop, SIGUSR1, loop_sig_cb, NULL, &L.sig)))
        L.sig = NULL;
    for (int i = 0; i < N_PIPES; i++) {
        if (!ACCEPT(bgl_io_new(L.loop, L.pipes[i][0], BGL_IO_READ, loop_io_cb, (void *)(intptr_t)i,
                               &L.ios[i])))
            L.ios[i] = NULL;
        if (write(L.pipes[i][1], "x", 1) != 1)
            die("write: %s", strerror(errno));
    }
    for (int i = 0; i < N_CALLS; i++) {
        if (ACCEPT(bgl_loop_call_soon_full(L.loop, call_ran, NULL, call_discarded)))
            L.calls_made++;
        if (ACCEPT(bgl_loop_call_threadsafe(L.loop, call_ran, NULL, call_discarded)))
            L.calls_made++;
    }
    if (L.sig)
        raise(SIGUSR1);
    L.clk.now += 5 * MS;
    for (int i = 0; i < 3; i++)
        ACCEPT(bgl_loop_run_once(L.loop, 0));
    ACCEPT(bgl_loop_kick(L.loop, 0, -1));
}

static void loop_finish(void)
{
    if (!L.loop) {
        MUST(bgl_loop_new(&L.loop));
    } else {
        settle(L.loop);
        CHECK(L.calls_ran == L.calls_made, "%d calls accepted, %d ran", L.calls_made, L.calls_ran);
        for (int i = 0; i < N_PIPES; i++)
            CHECK(!L.ios[i] || L.io_fired[i] >= 1, "readable watcher %d never called", i);
        if (L.sig)
            CHECK(L.sig_fired >= 1, "raised signal never delivered");
        for (int i = 0; i < 3; i++)
            CHECK(!L.timer_armed[i] || L.timer_fired[i] >= 1, "timer %d never fired", i);
    }
    check_usable(L.loop);
    for (int i = 0; i < 3; i++)
        if (L.timers[i])
            MUST(bgl_timer_free(L.timers[i]));
    for (int i = 0; i < N_PIPES; i++)
        if (L.ios[i])
            MUST(bgl_io_free(L.ios[i]));
    if (L.sig)
        MUST(bgl_signal_free(L.sig));
    MUST(bgl_loop_free(L.loop));
    CHECK(L.calls_discarded == 0, "%d calls discarded", L.calls_discarded);
    for (int i = 0; i < N_PIPES; i++) {
        close(L.pipes[i][0]);
        close(L.pipes[i][1]);
    }
}

/* ---- the service manager ---------------------------------------------------------- */

#define N_SVC 4

typedef struct svc_rec {
    const char *name, *owner;
    const char *deps[3];
    bgl_restart_policy restart;
    uint64_t stop_timeout;
    int ready_on_start, fail_start, async_res;
    bgl_service *svc;
    int added, destroyed;
} svc_rec;

typedef struct svc_ctx {
    bgl_loop *loop;
    fclock clk;
    bgl_tasks *tasks;
    bgl_services *mgr;
    svc_rec s[N_SVC];
    bgl_task *entries[64];
    int n_entries;
    bgl_resource *tokens[64];
    int n_tokens;
    int done_calls, stops_with_done;
} svc_ctx;

static svc_ctx S;

static int res_close_async(bgl_resource *res, void *object)
{
    (void)object;
    if (S.n_tokens < 64) {
        S.tokens[S.n_tokens++] = res;
        return BGL_RESOURCE_ASYNC;
    }
    return 0;
}

static int res_close_fails(bgl_resource *res, void *object)
{
    (void)res, (void)object;
    return -EIO;
}

static void entry_cancel(bgl_task *t, void *ud)
{
    (void)ud;
    ACCEPT(bgl_task_finish(t, BGL_TASK_CANCELLED, "cancelled by the manager"));
}

static int svc_start(bgl_service *svc, void *ud)
{
    svc_rec *r = ud;
    if (S.tasks && S.n_entries < 64 &&
        ACCEPT(bgl_task_new(S.tasks, r->owner, r->name, entry_cancel, NULL,
                            &S.entries[S.n_entries])))
        S.n_entries++;
    ACCEPT(bgl_resource_push(bgl_service_resources(svc), r->name, NULL,
                             r->async_res ? res_close_async : res_close_fails, NULL, NULL));
    if (r->fail_start)
        return -EIO;
    if (r->ready_on_start) {
        int rc = bgl_service_ready(svc);
        CHECK(rc == 0 || rc == -EALREADY || rc == -ESRCH, "ready: %d", rc);
    }
    return 0;
}

static void svc_stop(bgl_service *svc, void *ud)
{
    (void)ud;
    ACCEPT(bgl_service_exited(svc, 1, "stopped with a failure text"));
}

static void svc_destroy(void *ud)
{
    ((svc_rec *)ud)->destroyed++;
}

static const bgl_service_hooks svc_hooks = {svc_start, svc_stop, NULL, svc_destroy};

static void stop_done(bgl_services *mgr, const char *owner, void *ud)
{
    (void)mgr, (void)owner, (void)ud;
    S.done_calls++;
}

static void svc_advance(uint64_t ns)
{
    S.clk.now += ns;
    for (int i = 0; i < 1000; i++) {
        int n = bgl_loop_run_once(S.loop, 0);
        CHECK(n >= 0, "run_once: %s", bgl_strerror(n));
        if (n == 0)
            return;
    }
    die("the loop did not settle");
}

static void svc_setup(void)
{
    memset(&S, 0, sizeof S);
    MUST(bgl_loop_new(&S.loop));
    S.clk.now = SEC;
    MUST(bgl_loop_set_clock(S.loop, fclock_read, &S.clk));
    svc_rec recs[N_SVC] = {
        {"db", "a", {NULL}, BGL_RESTART_NO, SEC, 1, 0, 1, NULL, 0, 0},
        {"web", "a", {"db", NULL}, BGL_RESTART_ON_FAILURE, 2 * SEC, 1, 0, 0, NULL, 0, 0},
        {"job", "b", {"web", NULL}, BGL_RESTART_ALWAYS, 0, 0, 1, 1, NULL, 0, 0},
        {"lone", "b", {NULL}, BGL_RESTART_ON_FAILURE, 500 * MS, 0, 0, 1, NULL, 0, 0},
    };
    memcpy(S.s, recs, sizeof recs);
}

static void svc_work(void)
{
    if (!ACCEPT(bgl_tasks_new(&S.tasks)))
        S.tasks = NULL;
    if (!ACCEPT(bgl_services_new(S.loop, &S.mgr))) {
        S.mgr = NULL;
        return;
    }
    if (S.tasks)
        ACCEPT(bgl_services_set_tasks(S.mgr, S.tasks));
    for (int i = 0; i < N_SVC; i++) {
        svc_rec *r = &S.s[i];
        bgl_service_config cfg;
        bgl_service_config_init(&cfg);
        cfg.name = r->name;
        cfg.owner = r->owner;
        cfg.depends_on = r->deps[0] ? r->deps : NULL;
        cfg.restart = r->restart;
        cfg.stop_timeout_ns = r->stop_timeout;
        cfg.restart_delay_ns = 100 * MS;
        cfg.restart_delay_max_ns = SEC;
        cfg.start_limit_burst = 3;
        r->added = ACCEPT(bgl_service_add(S.mgr, &cfg, &svc_hooks, r, &r->svc));
    }
    bgl_resources *owner_res;
    if (ACCEPT(bgl_services_owner_resources(S.mgr, "a", &owner_res)))
        ACCEPT(bgl_resource_push(owner_res, "owner-thing", NULL, res_close_async, NULL, NULL));
    ACCEPT(bgl_resource_push(bgl_services_loop_resources(S.mgr), NULL, NULL, res_close_fails, NULL,
                             NULL));
    int rc = bgl_services_start(S.mgr, NULL);
    CHECK(rc == 0 || rc == -ENOMEM || rc == -ENOENT, "start: %d", rc);
    for (int i = 0; i < 6; i++)
        svc_advance(300 * MS);
    if (S.s[3].added) {
        rc = bgl_service_exited(S.s[3].svc, 1, "lone failed");
        CHECK(rc == 0 || rc == -ESRCH, "exited: %d", rc);
    }
    svc_advance(SEC);
    if (ACCEPT(bgl_services_stop_full(S.mgr, "a", (int64_t)(2 * SEC), stop_done, NULL)))
        S.stops_with_done++;
    for (int i = 0; i < 4; i++)
        svc_advance(SEC);
    rc = bgl_services_start(S.mgr, "a");   /* -ENOENT: a dependency was not added */
    CHECK(rc == 0 || rc == -ENOMEM || rc == -ENOENT, "start: %d", rc);
    svc_advance(100 * MS);
    if (ACCEPT(bgl_services_stop_full(S.mgr, NULL, -1, stop_done, NULL)))
        S.stops_with_done++;
    svc_advance(100 * MS);
}

static void svc_finish(void)
{
    if (S.mgr) {
        /* Everything can still be stopped, within bounded time. */
        MUST(bgl_services_stop_full(S.mgr, NULL, -1, stop_done, NULL));
        S.stops_with_done++;
        for (int i = 0; i < 200 && bgl_services_active(S.mgr, NULL) > 0; i++)
            svc_advance(SEC);
        CHECK(bgl_services_active(S.mgr, NULL) == 0, "a stop of everything never ended");
        CHECK(S.done_calls == S.stops_with_done, "%d stops with a done callback, %d calls",
              S.stops_with_done, S.done_calls);
        for (int i = 0; i < S.n_tokens; i++) {
            int rc = bgl_resource_done(S.tokens[i], 0, NULL);
            CHECK(rc == 0 || rc == -ETIMEDOUT, "resource_done: %d", rc);
        }
        S.n_tokens = 0;
        svc_advance(0);
        MUST(bgl_services_free(S.mgr));
        for (int i = 0; i < N_SVC; i++)
            CHECK(S.s[i].destroyed == S.s[i].added, "%s destroyed %d times", S.s[i].name,
                  S.s[i].destroyed);
    }
    if (S.tasks)
        MUST(bgl_tasks_free(S.tasks));
    check_usable(S.loop);
    MUST(bgl_loop_free(S.loop));
}

/* ---- the task registry ------------------------------------------------------------- */

typedef struct task_ctx {
    bgl_tasks *reg;
    int done_calls, done_added;
} task_ctx;

static task_ctx T;

static void task_done(bgl_task *t, bgl_task_state st, void *ud)
{
    (void)t, (void)st, (void)ud;
    T.done_calls++;
}

static void task_cancel_now(bgl_task *t, void *ud)
{
    (void)ud;
    ACCEPT(bgl_task_finish(t, BGL_TASK_CANCELLED, "cancelled"));
}

static void tasks_setup(void)
{
    memset(&T, 0, sizeof T);
}

static void tasks_work(void)
{
    if (!ACCEPT(bgl_tasks_new(&T.reg))) {
        T.reg = NULL;
        return;
    }
    bgl_task *t[6] = {0};
    for (int i = 0; i < 6; i++) {
        if (!ACCEPT(bgl_task_new(T.reg, i % 2 ? "a" : "b", "work", i < 3 ? task_cancel_now : NULL,
                                 NULL, &t[i]))) {
            t[i] = NULL;
            continue;
        }
        for (int k = 0; k < 2; k++)
            T.done_added += ACCEPT(bgl_task_add_done_cb(t[i], task_done, NULL));
    }
    if (t[0])
        ACCEPT(bgl_task_set_running(t[0]));
    if (t[1])
        ACCEPT(bgl_task_finish(t[1], BGL_TASK_FAILED, "a failure with a text"));
    if (t[4])
        ACCEPT(bgl_task_abandon(t[4]));
    ACCEPT(bgl_tasks_cancel(T.reg, "a"));
    bgl_task *list[8];
    ACCEPT(bgl_tasks_list(T.reg, NULL, list, 8));
    bgl_task *found;
    int rc = bgl_tasks_find(T.reg, "b", "work", &found);
    CHECK(rc == 0 || rc == -ENOENT, "find: %d", rc);
    ACCEPT(bgl_tasks_cancel(T.reg, NULL));
    if (t[5])
        MUST(bgl_task_free(t[5]));
}

static void tasks_finish(void)
{
    if (!T.reg)
        return;
    CHECK(T.done_calls <= T.done_added, "%d done callbacks added, %d called", T.done_added,
          T.done_calls);
    MUST(bgl_tasks_free(T.reg));
}

/* ---- a resource stack ------------------------------------------------------------------ */

typedef struct res_ctx {
    bgl_loop *loop;
    fclock clk;
    bgl_resources *rs;
    bgl_resource *tokens[8];
    int n_tokens;
    int closed_reports, released, pushed;
} res_ctx;

static res_ctx R;

static int r_close_async(bgl_resource *res, void *object)
{
    (void)object;
    R.tokens[R.n_tokens++] = res;
    return BGL_RESOURCE_ASYNC;
}

static int r_close_fails(bgl_resource *res, void *object)
{
    (void)res, (void)object;
    return -EPIPE;
}

static int r_close_ok(bgl_resource *res, void *object)
{
    (void)res, (void)object;
    return 0;
}

static void r_release(void *object)
{
    (void)object;
    R.released++;
}

static void r_closed(bgl_resources *rs, const bgl_resources_report *rep, void *ud)
{
    (void)rs, (void)rep, (void)ud;
    R.closed_reports++;
}

static void res_setup(void)
{
    memset(&R, 0, sizeof R);
    MUST(bgl_loop_new(&R.loop));
    R.clk.now = SEC;
    MUST(bgl_loop_set_clock(R.loop, fclock_read, &R.clk));
}

static void res_push_set(void)
{
    bgl_resource_close_fn fns[4] = {r_close_ok, r_close_fails, r_close_async, r_close_async};
    const char *names[4] = {"ok", NULL, "late", "later"};
    for (int i = 0; i < 4; i++)
        R.pushed += ACCEPT(bgl_resource_push(R.rs, names[i], NULL, fns[i], r_release, NULL));
}

static void res_work(void)
{
    if (!ACCEPT(bgl_resources_new(R.loop, &R.rs))) {
        R.rs = NULL;
        return;
    }
    MUST(bgl_resources_set_closed_cb(R.rs, r_closed, NULL));
    res_push_set();
    ACCEPT(bgl_resources_close(R.rs, (int64_t)SEC));
    MUST(bgl_loop_run_once(R.loop, 0));
    if (R.n_tokens)
        ACCEPT(bgl_resource_done(R.tokens[--R.n_tokens], -EIO, "closed late with a text"));
    R.clk.now += 2 * SEC;
    settle(R.loop);
    bgl_resources_report rep;
    MUST(bgl_resources_get_report(R.rs, &rep));
    res_push_set();
    ACCEPT(bgl_resources_close(R.rs, 0));
    settle(R.loop);
}

static void res_finish(void)
{
    if (R.rs) {
        /* A close refused for lack of memory left entries: close them now. */
        if (MUST(bgl_resources_count(R.rs)) > 0 || MUST(bgl_resources_is_closing(R.rs))) {
            MUST(bgl_resources_close(R.rs, 0));
            settle(R.loop);
        }
        for (int i = 0; i < R.n_tokens; i++) {
            int rc = bgl_resource_done(R.tokens[i], 0, NULL);
            CHECK(rc == 0 || rc == -ETIMEDOUT, "resource_done: %d", rc);
        }
        MUST(bgl_resources_free(R.rs));
        CHECK(R.released == R.pushed, "%d pushed, %d released", R.pushed, R.released);
    }
    check_usable(R.loop);
    MUST(bgl_loop_free(R.loop));
}

/* ---- the driver ------------------------------------------------------------------------ */

typedef struct scenario {
    const char *name;
    void (*setup)(void);
    void (*work)(void);
    void (*finish)(void);
} scenario;

static void no_setup(void)
{
}

static const scenario scenarios[] = {
    {"loop: timers, descriptors, a signal, deferred and thread-safe calls", no_setup, loop_work,
     loop_finish},
    {"services: dependencies, restarts, registry entries, resources, stops", svc_setup, svc_work,
     svc_finish},
    {"task registry: entries, done callbacks, cancel, abandon", tasks_setup, tasks_work,
     tasks_finish},
    {"resource stack: synchronous, failing and asynchronous closes", res_setup, res_work,
     res_finish},
};

int main(void)
{
    size_t n = sizeof scenarios / sizeof scenarios[0];
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        const scenario *sc = &scenarios[i];
        scenario_name = sc->name;
        current_n = 0;
        sc->setup();
        alloc_fail_arm(0);
        sc->work();
        size_t total = alloc_fail_disarm();
        sc->finish();
        CHECK(total > 0, "the scenario allocated nothing: the wrappers are not linked in");
        /* Fail each allocation once; a failure may change the path, so go
         * on until an armed failure is no longer reached. */
        size_t points = 0;
        for (current_n = 1;; current_n++) {
            sc->setup();
            alloc_fail_arm(current_n);
            sc->work();
            alloc_fail_disarm();
            int fired = alloc_fail_fired();
            sc->finish();
            if (!fired)
                break;
            points++;
        }
        CHECK(points >= total, "only %zu of %zu allocations were failed", points, total);
        printf("ok %zu - %s: %zu allocations, each failed once\n", i + 1, sc->name, points);
        fflush(stdout);
    }
    return 0;
}
