/* test_service_random.c - random but reproducible (fixed seeds) sequences of
 * starts, stops, readiness and exit reports, failures, clock jumps and
 * resource pushes/completions against a random dependency graph.  After
 * every step the manager's promises are checked:
 *   - a start hook only runs when every dependency is RUNNING;
 *   - a stop hook only runs when no dependent is starting/running/stopping;
 *   - a service is never RUNNING while a dependency is down, except while it
 *     waits for its own dependents to stop;
 * and at the end a stop of everything completes within bounded clock time
 * and leaves nothing active.  Nothing here may crash, hang or leak. */
#include "helpers.h"

TestSuite(service_random, .timeout = BGL_TEST_TIMEOUT);

#define N 8
#define T0 UINT64_C(1000000000)

typedef struct rnd_world rnd_world;

typedef struct rsvc {
    rnd_world *w;
    int idx;
    char name[8];
    bgl_service *svc;
    int deps[N];
    int n_deps;
    int ready_on_start, exit_on_stop, exit_on_cancel;
} rsvc;

typedef struct robj {
    rnd_world *w;
    int async;
    bgl_resource *token;   /* outstanding asynchronous close */
} robj;

struct rnd_world {
    bgl_loop *loop;
    fake_clock clk;
    bgl_services *mgr;
    rsvc s[N];
    robj objs[4096];
    int n_objs;
    uint64_t rng;
    int starts, stops;
};

static unsigned rnd(rnd_world *w, unsigned n)
{
    /* xorshift64*: small, deterministic, good enough for choosing actions */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (unsigned)((w->rng * UINT64_C(2685821657736338717)) >> 33) % n;
}

static int busy(const rsvc *x)
{
    int st = bgl_service_get_state(x->svc);
    return st == BGL_SERVICE_STARTING || st == BGL_SERVICE_RUNNING || st == BGL_SERVICE_STOPPING;
}

static int r_start(bgl_service *svc, void *ud)
{
    rsvc *x = ud;
    x->w->starts++;
    for (int i = 0; i < x->n_deps; i++) {
        rsvc *d = &x->w->s[x->deps[i]];
        cr_assert_eq(bgl_service_get_state(d->svc), BGL_SERVICE_RUNNING,
                     "%s started while its dependency %s is %s", x->name, d->name,
                     bgl_service_state_name(bgl_service_get_state(d->svc)));
    }
    if (x->ready_on_start)
        OK(bgl_service_ready(svc));
    return 0;
}

static void r_stop(bgl_service *svc, void *ud)
{
    rsvc *x = ud;
    x->w->stops++;
    for (int i = 0; i < N; i++) {
        rsvc *t = &x->w->s[i];
        for (int k = 0; k < t->n_deps; k++)
            cr_assert(!(t->deps[k] == x->idx && busy(t)),
                      "%s asked to stop while its dependent %s is %s", x->name, t->name,
                      bgl_service_state_name(bgl_service_get_state(t->svc)));
    }
    if (x->exit_on_stop)
        OK(bgl_service_exited(svc, 0, NULL));
}

static void r_cancel(bgl_service *svc, void *ud)
{
    rsvc *x = ud;
    if (x->exit_on_cancel)
        OK(bgl_service_exited(svc, 1, "cancelled"));
}

static const bgl_service_hooks r_hooks = {.start = r_start, .stop = r_stop, .cancel = r_cancel};

static int r_close(bgl_resource *res, void *object)
{
    robj *o = object;
    if (!o->async)
        return 0;
    o->token = res;
    return BGL_RESOURCE_ASYNC;
}

static void settle_r(rnd_world *w)
{
    for (int i = 0; i < 1000; i++) {
        int n = bgl_loop_run_once(w->loop, 0);
        cr_assert_geq(n, 0);
        if (n == 0)
            return;
    }
    cr_assert_fail("the loop did not settle");
}

static void build(rnd_world *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    w->loop = new_loop();
    use_fake_clock(w->loop, &w->clk, T0);
    OK(bgl_services_new(w->loop, &w->mgr));
    for (int i = 0; i < N; i++) {
        rsvc *x = &w->s[i];
        x->w = w;
        x->idx = i;
        snprintf(x->name, sizeof x->name, "s%d", i);
        const char *deps[N + 1];
        for (int j = 0; j < i; j++)   /* edges only to lower indices: a DAG */
            if (rnd(w, 4) == 0) {
                x->deps[x->n_deps] = j;
                deps[x->n_deps++] = w->s[j].name;
            }
        deps[x->n_deps] = NULL;
        bgl_service_config cfg;
        bgl_service_config_init(&cfg);
        cfg.name = x->name;
        cfg.owner = rnd(w, 2) ? "even" : "odd";
        cfg.depends_on = deps;
        cfg.restart = (bgl_restart_policy)rnd(w, 3);
        cfg.stop_timeout_ns = (1 + rnd(w, 3)) * SEC;
        cfg.close_timeout_ns = (1 + rnd(w, 3)) * SEC;
        cfg.restart_delay_ns = 100 * MS;
        cfg.restart_delay_max_ns = 2 * SEC;
        cfg.start_limit_burst = rnd(w, 4);
        cfg.start_limit_interval_ns = 5 * SEC;
        OK(bgl_service_add(w->mgr, &cfg, &r_hooks, x, &x->svc));
        x->ready_on_start = rnd(w, 2);
        x->exit_on_stop = rnd(w, 2);
        x->exit_on_cancel = rnd(w, 3) != 0;
    }
}

static void check_running_deps(rnd_world *w)
{
    for (int i = 0; i < N; i++) {
        rsvc *x = &w->s[i];
        if (bgl_service_get_state(x->svc) != BGL_SERVICE_RUNNING)
            continue;
        for (int k = 0; k < x->n_deps; k++) {
            rsvc *d = &w->s[x->deps[k]];
            if (bgl_service_get_state(d->svc) == BGL_SERVICE_RUNNING)
                continue;
            /* Allowed only while one of x's dependents still has to stop. */
            int waits = 0;
            for (int j = 0; j < N; j++)
                for (int m = 0; m < w->s[j].n_deps; m++)
                    waits |= w->s[j].deps[m] == i && busy(&w->s[j]);
            cr_assert(waits, "%s is running while its dependency %s is %s", x->name, d->name,
                      bgl_service_state_name(bgl_service_get_state(d->svc)));
        }
    }
}

static void step(rnd_world *w)
{
    rsvc *x = &w->s[rnd(w, N)];
    const char *owner = rnd(w, 2) ? "even" : "odd";
    int r;
    switch (rnd(w, 12)) {
    case 0: OK(bgl_services_start(w->mgr, rnd(w, 3) ? owner : NULL)); break;
    case 1: OK(bgl_services_stop(w->mgr, rnd(w, 3) ? owner : NULL)); break;
    case 2: OK(bgl_service_start(x->svc)); break;
    case 3: OK(bgl_service_stop(x->svc)); break;
    case 4:
    case 5:
        r = bgl_service_ready(x->svc);
        cr_assert(r == 0 || r == -EALREADY || r == -ESRCH, "ready: %d", r);
        break;
    case 6:
        r = bgl_service_exited(x->svc, (int)rnd(w, 2), "random failure");
        cr_assert(r == 0 || r == -ESRCH, "exited: %d", r);
        break;
    case 7:
        w->clk.now += rnd(w, 3000) * MS;
        break;
    case 8:
        if (w->n_objs < 4096) {
            robj *o = &w->objs[w->n_objs++];
            o->w = w;
            o->async = (int)rnd(w, 2);
            OK(bgl_resource_push(bgl_service_resources(x->svc), "r", o, r_close, NULL, NULL));
        }
        break;
    case 9:
        for (int i = 0; i < w->n_objs; i++) {
            robj *o = &w->objs[(i + rnd(w, 7)) % w->n_objs];
            if (o->token) {
                r = bgl_resource_done(o->token, rnd(w, 2) ? 0 : -EIO, NULL);
                cr_assert(r == 0 || r == -ETIMEDOUT, "done: %d", r);
                o->token = NULL;
                break;
            }
        }
        break;
    case 10:
        x->exit_on_stop = (int)rnd(w, 2);
        x->ready_on_start = (int)rnd(w, 2);
        break;
    default:
        break;   /* just let the loop run */
    }
    settle_r(w);
    check_running_deps(w);
}

static void finish(rnd_world *w)
{
    /* From here on every service cooperates only through cancellation and
     * timeouts: the stop must still complete. */
    OK(bgl_services_stop(w->mgr, NULL));
    settle_r(w);
    for (int i = 0; i < 100 && bgl_services_active(w->mgr, NULL) > 0; i++) {
        w->clk.now += 1 * SEC;
        settle_r(w);
    }
    EXPECT_RC(bgl_services_active(w->mgr, NULL), 0);
    for (int i = 0; i < N; i++)
        cr_assert(!busy(&w->s[i]), "%s still %s", w->s[i].name,
                  bgl_service_state_name(bgl_service_get_state(w->s[i].svc)));
    /* Late completions of abandoned closes free their entries. */
    for (int i = 0; i < w->n_objs; i++)
        if (w->objs[i].token)
            EXPECT_RC(bgl_resource_done(w->objs[i].token, 0, NULL), -ETIMEDOUT);
    OK(bgl_services_free(w->mgr));
    free_loop(w->loop);
}

Test(service_random, service_random_sequences_keep_every_promise)
{
    static rnd_world w;   /* large: keep it off the stack */
    int total_starts = 0, total_stops = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        build(&w, seed);
        for (int i = 0; i < 300; i++)
            step(&w);
        total_starts += w.starts;
        total_stops += w.stops;
        finish(&w);
    }
    /* The walk really exercised the machine. */
    cr_assert_gt(total_starts, 500, "only %d starts", total_starts);
    cr_assert_gt(total_stops, 300, "only %d stops", total_stops);
}
