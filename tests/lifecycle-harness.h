/* lifecycle-harness.h - a scripted world for the service/resource tests: a
 * loop on a fake clock, a service manager, and fake services whose hooks log
 * what the manager asked ("start:a", "stop:b", "cancel:c") and react as the
 * test configured them.  Driven one iteration at a time, no sleeps. */
#ifndef BGL_TESTS_LIFECYCLE_HARNESS_H
#define BGL_TESTS_LIFECYCLE_HARNESS_H

#include "helpers.h"

#define T0 UINT64_C(1000000000)

typedef struct world world;

typedef struct fake_svc {
    world *w;
    char name[32];
    bgl_service *svc;
    int ready_on_start;   /* start hook reports ready at once */
    int exit_on_stop;     /* stop hook reports a clean exit at once */
    int exit_on_cancel;   /* cancel hook reports an exit at once */
    int start_rc;         /* what the start hook returns */
    int starts, stops, cancels, destroyed;
} fake_svc;

struct world {
    bgl_loop *loop;
    fake_clock clk;
    bgl_services *mgr;
    char log[4096];
    fake_svc svcs[16];
    int n;
    char transitions[4096];   /* "a:stopped>starting ..." from the state cb */
};

static inline void logf_(char *buf, size_t size, const char *what, const char *name)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s:%s", len ? " " : "", what, name);
}

static inline void wlog(world *w, const char *what, const char *name)
{
    logf_(w->log, sizeof w->log, what, name);
}

/* Assert the hook log since the last check, then clear it. */
#define EXPECT_LOG(w, want)                                                    \
    do {                                                                       \
        cr_assert_str_eq((w)->log, (want), "hook log: got \"%s\", expected \"%s\"", \
                         (w)->log, (want));                                    \
        (w)->log[0] = '\0';                                                    \
    } while (0)

static int fake_start(bgl_service *svc, void *ud)
{
    fake_svc *f = ud;
    f->svc = svc;
    f->starts++;
    wlog(f->w, "start", f->name);
    if (f->start_rc)
        return f->start_rc;
    if (f->ready_on_start)
        OK(bgl_service_ready(svc));
    return 0;
}

static void fake_stop(bgl_service *svc, void *ud)
{
    fake_svc *f = ud;
    f->stops++;
    wlog(f->w, "stop", f->name);
    if (f->exit_on_stop)
        OK(bgl_service_exited(svc, 0, NULL));
}

static void fake_cancel(bgl_service *svc, void *ud)
{
    fake_svc *f = ud;
    f->cancels++;
    wlog(f->w, "cancel", f->name);
    if (f->exit_on_cancel)
        OK(bgl_service_exited(svc, 1, "cancelled"));
}

static void fake_destroy(void *ud)
{
    ((fake_svc *)ud)->destroyed++;
}

static const bgl_service_hooks fake_hooks = {
    .start = fake_start,
    .stop = fake_stop,
    .cancel = fake_cancel,
    .destroy = fake_destroy,
};

static void world_state_cb(bgl_service *svc, bgl_service_state old_state,
                           bgl_service_state new_state, void *ud)
{
    world *w = ud;
    char what[64];
    snprintf(what, sizeof what, "%s>%s", bgl_service_state_name(old_state),
             bgl_service_state_name(new_state));
    logf_(w->transitions, sizeof w->transitions, bgl_service_name(svc), what);
}

static inline void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->loop = new_loop();
    use_fake_clock(w->loop, &w->clk, T0);
    OK(bgl_services_new(w->loop, &w->mgr));
    OK(bgl_services_set_state_cb(w->mgr, world_state_cb, w));
}

/* Run iterations until one dispatches nothing.  Only timers that are due on
 * the fake clock fire, so this always ends. */
static inline void settle(world *w)
{
    for (int i = 0; i < 1000; i++) {
        int n = bgl_loop_run_once(w->loop, 0);
        cr_assert_geq(n, 0, "bgl_loop_run_once: %s", bgl_strerror(n));
        if (n == 0)
            return;
    }
    cr_assert_fail("the loop did not settle");
}

/* Move the fake clock forward and run what became due. */
static inline void advance(world *w, uint64_t ns)
{
    w->clk.now += ns;
    settle(w);
}

/* Add a fake service.  deps: NULL-terminated names or NULL. */
static inline fake_svc *add_full(world *w, const char *name, const char *owner,
                                 const char *const *deps, bgl_service_config *cfg_in)
{
    cr_assert_lt(w->n, 16);
    fake_svc *f = &w->svcs[w->n++];
    memset(f, 0, sizeof *f);
    f->w = w;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->exit_on_stop = 1;
    f->exit_on_cancel = 1;
    bgl_service_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        bgl_service_config_init(&cfg);
    cfg.name = name;
    cfg.owner = owner;
    cfg.depends_on = deps;
    int rc = bgl_service_add(w->mgr, &cfg, &fake_hooks, f, &f->svc);
    cr_assert_eq(rc, 0, "bgl_service_add(%s): %s (%s)", name, bgl_strerror(rc),
                 bgl_services_last_error(w->mgr));
    return f;
}

#define DEPS(...) ((const char *const[]){__VA_ARGS__, NULL})

static inline fake_svc *add(world *w, const char *name, const char *const *deps)
{
    return add_full(w, name, "addon", deps, NULL);
}

static inline int state_of(const fake_svc *f)
{
    return bgl_service_get_state(f->svc);
}

#define EXPECT_STATE(f, st)                                                    \
    cr_assert_eq(state_of(f), (st), "%s is %s, expected %s", (f)->name,        \
                 bgl_service_state_name(state_of(f)), bgl_service_state_name(st))

static inline void ready(fake_svc *f)
{
    OK(bgl_service_ready(f->svc));
}

/* Stop everything, let it end, free the manager and the loop: every test
 * ends here, so leaks and dangling timers show up under ASan. */
static inline void world_free(world *w)
{
    OK(bgl_services_stop(w->mgr, NULL));
    settle(w);
    for (int i = 0; i < 100 && bgl_services_active(w->mgr, NULL) > 0; i++)
        advance(w, 10 * SEC);
    EXPECT_RC(bgl_services_active(w->mgr, NULL), 0);
    OK(bgl_services_free(w->mgr));
    for (int i = 0; i < w->n; i++)
        cr_assert_eq(w->svcs[i].destroyed, 1, "%s destroyed %d times", w->svcs[i].name,
                     w->svcs[i].destroyed);
    free_loop(w->loop);
}

#endif /* BGL_TESTS_LIFECYCLE_HARNESS_H */
