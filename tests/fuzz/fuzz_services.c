/* fuzz_services.c - libFuzzer harness of the service manager, the task
 * registry and the resource stacks on one loop with a settable clock.  The
 * input builds a dependency graph (up to N_SVC services of two owners, each
 * with its own restart policy, stop timeout, start limit and behaviour:
 * ready at once or not, ends on stop or cancel or ignores them, start hook
 * failing), then drives it: starts and stops (of one service, an owner,
 * everything; with deadlines and done callbacks), readiness and exit
 * reports, registry entries that finish or ignore cancellation, resources
 * closing at once or asynchronously (late, or never), removals, keep-alive,
 * clock jumps and loop iterations.
 *
 * Checked after each step and in each hook:
 *   - every state change is a transition of service.h's table;
 *   - a start hook runs only when every dependency is RUNNING; a stop hook
 *     only when no dependent is starting, running or stopping;
 *   - a stop's done callback runs exactly once, from the loop;
 *   - exit code, "failed for good" and "nothing left" agree;
 *   - finally a stop of everything completes within the sum of the
 *     services' stop, task and close bounds on the clock, whatever the
 *     services do, and the manager, registry and loop free cleanly (ASan
 *     checks for leaks) with every destroy hook called once. */
#include "fuzz-common.h"

#include <errno.h>
#include <string.h>

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define T0 SEC
#define N_SVC 6
#define N_TASKS 32
#define N_RES 32
#define N_STOPS 32
#define MAX_OPS 300

typedef struct fsvc {
    bgl_service *svc;
    char name[8];
    const char *owner;
    int deps[N_SVC];
    int n_deps;
    bgl_service_config cfg;
    int ready_on_start, exit_on_stop, exit_on_cancel, start_rc, tasks_on_start;
    int destroyed;
    int removed;
} fsvc;

typedef struct ftask {
    bgl_task *t;
    int ignore_cancel;
} ftask;

typedef struct fres {
    int used;
    int mode;            /* 0: closes at once, 1: error, 2: async, done later */
    bgl_resource *token; /* outstanding asynchronous close */
    int released;
    int closed;
} fres;

typedef struct fstop {
    int used;
    int done;
} fstop;

typedef struct world {
    fuzz_in in;
    bgl_loop *loop;
    fuzz_clock clk;
    bgl_services *mgr;
    bgl_tasks *tasks;
    fsvc s[N_SVC];
    int n;
    ftask tasks_v[N_TASKS];
    fres res[N_RES];
    fstop stops[N_STOPS];
    int in_api;          /* inside a call made by the harness, not the loop */
} world;

static world W;

/* ---- checks ---------------------------------------------------------------- */

static int busy_state(int st)
{
    return st == BGL_SERVICE_STARTING || st == BGL_SERVICE_RUNNING || st == BGL_SERVICE_STOPPING;
}

static int state_of(int i)
{
    return bgl_service_get_state(W.s[i].svc);
}

static int legal(int from, int to)
{
    if (from == to)
        return 1;   /* only the error text changed */
    switch (to) {
    case BGL_SERVICE_STARTING:
        return from == BGL_SERVICE_STOPPED || from == BGL_SERVICE_EXITED ||
               from == BGL_SERVICE_FAILED;
    case BGL_SERVICE_RUNNING:
        return from == BGL_SERVICE_STARTING;
    case BGL_SERVICE_STOPPING:
        return from == BGL_SERVICE_STARTING || from == BGL_SERVICE_RUNNING;
    case BGL_SERVICE_FAILED:
        /* the start limit is hit instead of a start */
        return busy_state(from) || from == BGL_SERVICE_STOPPED || from == BGL_SERVICE_EXITED;
    case BGL_SERVICE_EXITED:
    case BGL_SERVICE_STOPPED:
        return busy_state(from);
    default:
        return 0;
    }
}

static void state_cb(bgl_service *svc, bgl_service_state from, bgl_service_state to, void *ud)
{
    (void)ud;
    TRACE("  %s: %s -> %s\n", bgl_service_name(svc), bgl_service_state_name(from),
          bgl_service_state_name(to));
    CHECK(legal(from, to), "%s: illegal transition %s -> %s", bgl_service_name(svc),
          bgl_service_state_name(from), bgl_service_state_name(to));
}

static void check_world(void)
{
    bgl_service *failed[N_SVC];
    int nf = bgl_services_list_failed(W.mgr, failed, N_SVC);
    CHECK(nf >= 0 && nf <= N_SVC, "list_failed: %d", nf);
    int ffg = 0;
    for (int i = 0; i < W.n; i++) {
        if (W.s[i].removed)
            continue;
        bgl_service_info info;
        MUST(bgl_service_get_info(W.s[i].svc, &info));
        CHECK(info.state == (bgl_service_state)state_of(i), "info and state disagree");
        if (info.failed_for_good) {
            ffg++;
            CHECK(info.state == BGL_SERVICE_FAILED, "%s failed for good in state %s",
                  info.name, bgl_service_state_name(info.state));
        }
    }
    CHECK(ffg == nf, "%d failed for good, list_failed says %d", ffg, nf);
    EXPECT(bgl_services_exit_code(W.mgr), nf > 0);
    int left = bgl_services_nothing_left(W.mgr);
    CHECK(left == 0 || left == 1, "nothing_left: %d", left);
    if (left)
        EXPECT(bgl_services_active(W.mgr, NULL), 0);
}

/* ---- hooks ----------------------------------------------------------------- */

static fsvc *svc_of(void *ud)
{
    fsvc *f = ud;
    CHECK(f >= W.s && f < W.s + N_SVC, "service userdata %p is not a record", ud);
    CHECK(!f->destroyed, "hook of a destroyed service");
    return f;
}

static void task_cancel(bgl_task *t, void *ud)
{
    ftask *f = ud;
    CHECK(f >= W.tasks_v && f < W.tasks_v + N_TASKS && f->t == t, "task userdata %p", ud);
    if (!f->ignore_cancel)
        MUST(bgl_task_finish(t, BGL_TASK_CANCELLED, NULL));
}

static void new_task(const char *owner, const char *name, int ignore_cancel)
{
    if (!W.tasks)
        return;
    for (int i = 0; i < N_TASKS; i++) {
        ftask *f = &W.tasks_v[i];
        if (f->t)
            continue;
        f->ignore_cancel = ignore_cancel;
        MUST(bgl_task_new(W.tasks, owner, name, task_cancel, f, &f->t));
        if (ignore_cancel & 2)
            MUST(bgl_task_set_running(f->t));
        return;
    }
}

static int h_start(bgl_service *svc, void *ud)
{
    fsvc *f = svc_of(ud);
    CHECK(f->svc == svc, "start hook of another service");
    for (int k = 0; k < f->n_deps; k++)
        CHECK(state_of(f->deps[k]) == BGL_SERVICE_RUNNING, "%s started while %s is %s", f->name,
              W.s[f->deps[k]].name, bgl_service_state_name(state_of(f->deps[k])));
    for (int k = 0; k < f->tasks_on_start; k++)
        new_task(f->owner, f->name, k);
    if (f->start_rc)
        return f->start_rc;
    if (f->ready_on_start)
        MUST(bgl_service_ready(svc));
    return 0;
}

static void h_stop(bgl_service *svc, void *ud)
{
    fsvc *f = svc_of(ud);
    int me = (int)(f - W.s);
    for (int i = 0; i < W.n; i++)
        for (int k = 0; k < W.s[i].n_deps; k++)
            if (W.s[i].deps[k] == me && !W.s[i].removed)
                CHECK(!busy_state(state_of(i)), "%s asked to stop while its dependent %s is %s",
                      f->name, W.s[i].name, bgl_service_state_name(state_of(i)));
    if (f->exit_on_stop)
        MUST(bgl_service_exited(svc, 0, NULL));
}

static void h_cancel(bgl_service *svc, void *ud)
{
    fsvc *f = svc_of(ud);
    if (f->exit_on_cancel)
        MUST(bgl_service_exited(svc, 1, "cancelled"));
}

static void h_destroy(void *ud)
{
    fsvc *f = ud;
    CHECK(f >= W.s && f < W.s + N_SVC, "destroy userdata %p", ud);
    CHECK(!f->destroyed, "%s destroyed twice", f->name);
    f->destroyed = 1;
}

static const bgl_service_hooks hooks = {h_start, h_stop, h_cancel, h_destroy};

static const bgl_service_hooks hooks_no_cancel = {h_start, h_stop, NULL, h_destroy};

static int res_close(bgl_resource *r, void *object)
{
    fres *f = object;
    CHECK(f >= W.res && f < W.res + N_RES && f->used, "resource object %p", object);
    CHECK(!f->closed, "resource closed twice");
    f->closed = 1;
    TRACE("  close resource %d mode %d\n", (int)(f - W.res), f->mode);
    if (f->mode == 1)
        return -EIO;
    if (f->mode == 2) {
        f->token = r;
        return BGL_RESOURCE_ASYNC;
    }
    return 0;
}

static void res_release(void *object)
{
    fres *f = object;
    CHECK(f >= W.res && f < W.res + N_RES && f->used, "released object %p", object);
    CHECK(!f->released && !f->token, "released twice or with its close outstanding");
    f->released = 1;
    f->used = 0;
}

static void stop_done(bgl_services *mgr, const char *owner, void *ud)
{
    (void)owner;
    fstop *f = ud;
    CHECK(mgr == W.mgr, "done callback of another manager");
    CHECK(f >= W.stops && f < W.stops + N_STOPS && f->used, "stop userdata %p", ud);
    CHECK(!W.in_api, "done callback called from inside the stop call");
    CHECK(!f->done, "done callback called twice");
    TRACE("  done: stop %d of %s\n", (int)(f - W.stops), owner ? owner : "(all)");
    f->done = 1;
}

/* ---- operations -------------------------------------------------------------- */

static const char *owners[] = {"a", "b"};
static const uint64_t stop_timeouts[] = {0, MS, 300 * MS, SEC, 5 * SEC};
static const uint64_t close_timeouts[] = {BGL_CLOSE_TIMEOUT_AUTO, 0, 50 * MS, 2 * SEC};

static void build(void)
{
    W.n = 2 + (int)fin_below(&W.in, N_SVC - 1);
    for (int i = 0; i < W.n; i++) {
        fsvc *f = &W.s[i];
        snprintf(f->name, sizeof f->name, "s%d", i);
        f->owner = owners[fin_u8(&W.in) & 1];
        unsigned mask = fin_u8(&W.in);
        const char *deps[N_SVC + 1];
        for (int j = 0; j < i; j++)   /* edges to lower indices only: no cycles */
            if (mask & (1u << j)) {
                f->deps[f->n_deps] = j;
                deps[f->n_deps++] = W.s[j].name;
            }
        deps[f->n_deps] = NULL;
        bgl_service_config *c = &f->cfg;
        bgl_service_config_init(c);
        c->name = f->name;
        c->owner = f->owner;
        c->depends_on = deps;
        c->restart = (bgl_restart_policy)fin_below(&W.in, 3);
        c->stop_timeout_ns = FIN_PICK(&W.in, stop_timeouts);
        c->close_timeout_ns = FIN_PICK(&W.in, close_timeouts);
        c->restart_delay_ns = (1 + fin_below(&W.in, 4)) * 50 * MS;
        c->restart_delay_max_ns = c->restart_delay_ns * (1 + fin_below(&W.in, 8));
        c->start_limit_burst = fin_below(&W.in, 5);
        c->start_limit_interval_ns = (1 + fin_below(&W.in, 10)) * SEC;
        unsigned b = fin_u8(&W.in);
        f->ready_on_start = b & 1;
        f->exit_on_stop = (b >> 1) & 1;
        f->exit_on_cancel = ((b >> 2) & 3) != 0;
        f->start_rc = (b >> 4) == 15 ? -EIO : 0;
        f->tasks_on_start = (b >> 5) & 3;
        int no_cancel = (b & 0xc0) == 0xc0;
        int r = bgl_service_add(W.mgr, c, no_cancel ? &hooks_no_cancel : &hooks, f, &f->svc);
        TRACE("add %s owner %s deps %d restart %d stop %.3f close %lld burst %u ready %d "
              "exit_on_stop %d exit_on_cancel %d start_rc %d tasks %d cancel %d\n",
              f->name, f->owner, f->n_deps, c->restart, (double)c->stop_timeout_ns / 1e9,
              (long long)c->close_timeout_ns, c->start_limit_burst, f->ready_on_start,
              f->exit_on_stop, f->exit_on_cancel, f->start_rc, f->tasks_on_start, !no_cancel);
        CHECK(r == 0, "add %s: %s (%s)", f->name, bgl_strerror(r),
              bgl_services_last_error(W.mgr));
        c->depends_on = NULL;   /* the manager copied them */
    }
}

static bgl_resources *pick_stack(unsigned k)
{
    bgl_resources *rs = NULL;
    switch (k % 3) {
    case 0: {
        fsvc *f = &W.s[(k / 3) % W.n];
        return f->removed ? NULL : bgl_service_resources(f->svc);
    }
    case 1:
        MUST(bgl_services_owner_resources(W.mgr, owners[(k / 3) & 1], &rs));
        return rs;
    default:
        return bgl_services_loop_resources(W.mgr);
    }
}

static void push_resource(unsigned k, unsigned mode)
{
    bgl_resources *rs = pick_stack(k);
    if (!rs)
        return;
    for (int i = 0; i < N_RES; i++) {
        fres *f = &W.res[i];
        if (f->used)
            continue;
        memset(f, 0, sizeof *f);
        f->used = 1;
        f->mode = (int)(mode % 3);
        TRACE("push resource %d mode %d on stack %u\n", i, f->mode, k % 3);
        MUST(bgl_resource_push(rs, "r", f, res_close, res_release, NULL));
        return;
    }
}

static void complete_resource(unsigned k, int late_ok)
{
    for (int i = 0; i < N_RES; i++) {
        fres *f = &W.res[(k + (unsigned)i) % N_RES];
        if (!f->used || !f->token)
            continue;
        bgl_resource *tok = f->token;
        f->token = NULL;
        int r = bgl_resource_done(tok, (k & 1) ? -EIO : 0, (k & 1) ? "late failure" : NULL);
        CHECK(r == 0 || (late_ok && r == -ETIMEDOUT), "resource_done: %s", bgl_strerror(r));
        return;
    }
}

static void stop_op(const char *owner, int64_t timeout, int with_done)
{
    fstop *s = NULL;
    if (with_done)
        for (int i = 0; i < N_STOPS && !s; i++)
            if (!W.stops[i].used)
                s = &W.stops[i];
    if (s) {
        s->used = 1;
        s->done = 0;
    }
    TRACE("stop %s timeout %lld done %d\n", owner ? owner : "(all)", (long long)timeout, s != NULL);
    W.in_api = 1;
    int r = bgl_services_stop_full(W.mgr, owner, timeout, s ? stop_done : NULL, s);
    W.in_api = 0;
    CHECK(r == 0, "stop_full: %s", bgl_strerror(r));
}

static void settle(void)
{
    for (int i = 0; i < 1000; i++) {
        int n = bgl_loop_run_once(W.loop, 0);
        CHECK(n >= 0, "run_once: %s", bgl_strerror(n));
        if (n == 0)
            return;
    }
    CHECK(0, "the loop did not settle in 1000 iterations");
}

static void step(unsigned op)
{
    fsvc *f = &W.s[fin_below(&W.in, (unsigned)W.n)];
    const char *owner = owners[fin_u8(&W.in) & 1];
    int r;
    TRACE("step %u on %s owner %s at %.3f s\n", op % 16, f->name, owner,
          (double)(W.clk.now - T0) / 1e9);
    switch (op % 16) {
    case 0:
        W.in_api = 1;
        r = bgl_services_start(W.mgr, op & 16 ? owner : NULL);
        W.in_api = 0;
        CHECK(r == 0 || r == -ENOENT, "start: %s", bgl_strerror(r));
        break;
    case 1: {
        static const int64_t deadlines[] = {-1, -1, 0, 100 * (int64_t)MS, 2 * (int64_t)SEC};
        stop_op(op & 16 ? owner : NULL, FIN_PICK(&W.in, deadlines), op & 32);
        break;
    }
    case 2:
        if (!f->removed) {
            r = bgl_service_start(f->svc);
            CHECK(r == 0 || r == -ENOENT, "service_start: %s", bgl_strerror(r));
        }
        break;
    case 3:
        if (!f->removed)
            MUST(bgl_service_stop(f->svc));
        break;
    case 4:
        if (!f->removed) {
            r = bgl_service_ready(f->svc);
            CHECK(r == 0 || r == -EALREADY || r == -ESRCH, "ready: %s", bgl_strerror(r));
        }
        break;
    case 5:
        if (!f->removed) {
            r = bgl_service_exited(f->svc, op & 16, op & 32 ? "caf\xc3\xa9 failed" : NULL);
            CHECK(r == 0 || r == -ESRCH, "exited: %s", bgl_strerror(r));
        }
        break;
    case 6: {
        static const uint64_t jumps[] = {0, MS, 60 * MS, 400 * MS, SEC, 7 * SEC, 40 * SEC};
        W.clk.now += FIN_PICK(&W.in, jumps);
        settle();
        break;
    }
    case 7:
    case 8:
        settle();
        break;
    case 9:
        push_resource(fin_u8(&W.in), op / 16);
        break;
    case 10:
        complete_resource(fin_u8(&W.in), 1);
        break;
    case 11: /* registry entries: new ones, or finish one */
        if (op & 16) {
            new_task(owner, f->name, (int)(op >> 5) & 3);
        } else if (W.tasks) {
            ftask *t = &W.tasks_v[fin_below(&W.in, N_TASKS)];
            if (t->t) {
                r = bgl_task_finish(t->t, BGL_TASK_DONE + (int)((op >> 5) % 3), NULL);
                CHECK(r == 0 || r == -EALREADY, "task_finish: %s", bgl_strerror(r));
                if (op & 128) {
                    MUST(bgl_task_free(t->t));
                    t->t = NULL;
                }
            }
        }
        break;
    case 12: /* remove: refused while in use, else the destroy hook runs */
        if (!f->removed) {
            bgl_service_info info;
            MUST(bgl_service_get_info(f->svc, &info));
            r = bgl_service_remove(f->svc);
            CHECK(r == 0 || r == -EBUSY, "remove: %s", bgl_strerror(r));
            if (r == 0) {
                CHECK(f->destroyed, "removed without its destroy hook");
                f->removed = 1;
            }
        }
        break;
    case 13:
        MUST(bgl_services_set_keepalive(W.mgr, op & 16 ? 1 : 0));
        break;
    case 14: {
        int act = bgl_services_active(W.mgr, op & 16 ? owner : NULL);
        CHECK(act >= 0, "active: %d", act);
        bgl_task_counts tc;
        if (W.tasks)
            MUST(bgl_tasks_count(W.tasks, NULL, &tc));
        break;
    }
    case 15: /* bad input gets errors, never a crash */
        EXPECT(bgl_services_start(W.mgr, ""), -EINVAL);
        EXPECT(bgl_services_stop_full(W.mgr, "", -1, NULL, NULL), -EINVAL);
        for (int i = 0; i < W.n; i++)
            if (!W.s[i].removed && busy_state(state_of(i))) {
                EXPECT(bgl_services_free(W.mgr), -EBUSY);
                break;
            }
        break;
    }
}

/* Stop everything; it must be over within the services' own bounds. */
static void stop_all_bounded(void)
{
    uint64_t bound = 2 * SEC;
    for (int i = 0; i < W.n; i++) {
        const bgl_service_config *c = &W.s[i].cfg;
        uint64_t st = c->stop_timeout_ns > SEC ? c->stop_timeout_ns : SEC;
        uint64_t close = c->close_timeout_ns == BGL_CLOSE_TIMEOUT_AUTO ? st
                         : c->close_timeout_ns > SEC ? c->close_timeout_ns : SEC;
        bound += 3 * st + close;   /* stop, cancel, registry grace; close */
    }
    bound += 4 * SEC;   /* the owner and manager stacks' closes */
    stop_op(NULL, -1, 1);
    uint64_t start = W.clk.now;
    for (;;) {
        settle();
        TRACE("  at %.3f s: active %d\n", (double)(W.clk.now - T0) / 1e9,
              bgl_services_active(W.mgr, NULL));
        if (bgl_services_active(W.mgr, NULL) == 0)
            break;
        int64_t t = -1;
        int r = bgl_loop_prepare(W.loop, &t);
        CHECK(r >= 0, "prepare: %s", bgl_strerror(r));
        CHECK(t >= 0, "a stop is waiting but no timer is armed (active %d)",
              bgl_services_active(W.mgr, NULL));
        W.clk.now += t > 0 ? (uint64_t)t : 1;
        CHECK(W.clk.now - start <= bound, "stop of everything not over after %.3f s (bound %.3f s)",
              (double)(W.clk.now - start) / 1e9, (double)bound / 1e9);
    }
    settle();
    for (int i = 0; i < N_STOPS; i++)
        if (W.stops[i].used)
            CHECK(W.stops[i].done, "a stop's done callback was never called");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds_before = fuzz_count_fds();
    memset(&W, 0, sizeof W);
    W.in.p = data;
    W.in.n = size;
    W.clk.now = T0;
    MUST(bgl_loop_new(&W.loop));
    MUST(bgl_loop_set_clock(W.loop, fuzz_clock_read, &W.clk));
    MUST(bgl_services_new(W.loop, &W.mgr));
    MUST(bgl_services_set_state_cb(W.mgr, state_cb, NULL));
    unsigned setup = fin_u8(&W.in);
    if (setup & 1) {
        MUST(bgl_tasks_new(&W.tasks));
        MUST(bgl_services_set_tasks(W.mgr, W.tasks));
    }
    build();

    for (int ops = 0; ops < MAX_OPS && fin_left(&W.in); ops++) {
        step(fin_u8(&W.in));
        check_world();
    }

    stop_all_bounded();
    check_world();
    /* A close that completes after its stack gave up on it. */
    for (int i = 0; i < N_RES; i++)
        complete_resource((unsigned)i, 1);
    settle();
    if (W.tasks) {
        for (int i = 0; i < N_TASKS; i++)
            if (W.tasks_v[i].t)
                MUST(bgl_task_free(W.tasks_v[i].t));
        MUST(bgl_tasks_free(W.tasks));
    }
    MUST(bgl_services_free(W.mgr));
    for (int i = 0; i < W.n; i++)
        CHECK(W.s[i].destroyed, "%s never destroyed", W.s[i].name);
    for (int i = 0; i < N_RES; i++)
        CHECK(!W.res[i].used, "resource %d never released", i);
    MUST(bgl_loop_free(W.loop));
    int fds_after = fuzz_count_fds();
    CHECK(fds_after == fds_before, "descriptors: %d before, %d after", fds_before, fds_after);
    return 0;
}
