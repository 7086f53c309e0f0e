/* service.c - the service manager: registration, the state machine, and the
 * reconcile pass that starts and stops services (see bgloop/service.h).
 *
 * API calls only record what is wanted and schedule a reconcile pass (a
 * zero-delay timer), so hooks are always called from the loop, never from
 * inside the caller's own call. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle-internal.h"
#include "service-internal.h"

#define DEFAULT_TIMEOUT_NS 5000000000ull

static void reconcile(bgl_services *mgr);

uint64_t svc_now(const bgl_services *mgr)
{
    uint64_t now = 0;
    bgl_loop_now(mgr->loop, &now);
    return now;
}

static void on_reconcile(bgl_timer *timer, void *userdata)
{
    (void)timer;
    reconcile(userdata);
}

void svc_schedule(bgl_services *mgr)
{
    if (bgl_timer_is_active(mgr->reconcile_timer) != 1)
        bgl_timer_start(mgr->reconcile_timer, 0, 0);
}

static void on_tasks_changed(void *ud, int gone)
{
    bgl_services *mgr = ud;
    if (gone)   /* the registry is being freed: stop counting it */
        mgr->tasks = NULL;
    svc_schedule(mgr);
}

static void on_scope_closed(bgl_resources *rs, void *ud)
{
    (void)rs;
    svc_schedule(ud);
}

void svc_set_error(bgl_service *s, char *text)
{
    free(s->error);
    s->error = text;
}

void svc_notify(bgl_service *s, bgl_service_state old_state)
{
    bgl_services *mgr = s->mgr;
    if (mgr->state_cb) {
        mgr->depth++;
        mgr->state_cb(s, old_state, s->state, mgr->state_ud);
        mgr->depth--;
    }
}

static void set_state(bgl_service *s, bgl_service_state st)
{
    bgl_service_state old = s->state;
    s->state = st;
    s->changed_ns = svc_now(s->mgr);
    if (st == BGL_SERVICE_RUNNING)
        s->running_since_ns = s->changed_ns;
    svc_notify(s, old);
    svc_schedule(s->mgr);
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* ---- manager ------------------------------------------------------------- */

int bgl_services_new(bgl_loop *loop, bgl_services **out)
{
    if (!loop || !out)
        return -EINVAL;
    bgl_services *mgr = calloc(1, sizeof *mgr);
    if (!mgr)
        return -ENOMEM;
    mgr->loop = loop;
    int r = bgl_timer_new(loop, on_reconcile, mgr, &mgr->reconcile_timer);
    if (r == 0) {
        r = bgl__resources_new_owned(loop, on_scope_closed, NULL, mgr, &mgr->res);
        if (r < 0)
            bgl_timer_free(mgr->reconcile_timer);
    }
    if (r < 0) {
        free(mgr);
        return r;
    }
    *out = mgr;
    return 0;
}

static void service_destroy(bgl_service *s)
{
    /* A hook like any other: bgl_services_free() and bgl_service_remove()
     * from it are -EBUSY (they would free what our caller still walks). */
    if (s->hooks.destroy) {
        s->mgr->depth++;
        s->hooks.destroy(s->userdata);
        s->mgr->depth--;
    }
    bgl_timer_free(s->stop_timer);
    bgl_timer_free(s->restart_timer);
    bgl__resources_free_owned(s->res);
    for (size_t i = 0; i < s->n_deps; i++)
        free(s->deps[i]);
    free(s->deps);
    free(s->name);
    free(s->owner);
    free(s->error);
    free(s->end_error);
    free(s->starts);
    free(s);
}

static int stack_busy(const bgl_resources *rs)
{
    return bgl_resources_count(rs) > 0 || bgl_resources_is_closing(rs) > 0;
}

int bgl_services_free(bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    if (mgr->depth || stack_busy(mgr->res))
        return -EBUSY;
    for (size_t i = 0; i < mgr->n; i++)
        if (svc_is_busy(mgr->svcs[i]) || stack_busy(mgr->svcs[i]->res))
            return -EBUSY;
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (stack_busy(mgr->owners[i]->res))
            return -EBUSY;
    if (mgr->holding)
        bgl_loop_release(mgr->loop);
    if (mgr->tasks)
        bgl__tasks_unwatch(mgr->tasks, on_tasks_changed, mgr);
    /* Take the services out before destroying them: a destroy hook that
     * looks the manager up must not reach one already freed.  Services its
     * hooks add meanwhile are destroyed in the next round. */
    while (mgr->n) {
        bgl_service **v = mgr->svcs;
        size_t n = mgr->n;
        mgr->svcs = NULL;
        mgr->n = mgr->cap = 0;
        for (size_t i = 0; i < n; i++)
            service_destroy(v[i]);
        free(v);
    }
    for (size_t i = 0; i < mgr->n_owners; i++) {
        bgl__resources_free_owned(mgr->owners[i]->res);
        free(mgr->owners[i]->owner);
        free(mgr->owners[i]);
    }
    free(mgr->owners);
    free(mgr->svcs);
    bgl__resources_free_owned(mgr->res);
    bgl_timer_free(mgr->reconcile_timer);
    free(mgr->last_error);
    free(mgr);
    return 0;
}

int bgl_services_set_state_cb(bgl_services *mgr, bgl_service_state_cb cb, void *userdata)
{
    if (!mgr)
        return -EINVAL;
    mgr->state_cb = cb;
    mgr->state_ud = userdata;
    return 0;
}

const char *bgl_services_last_error(const bgl_services *mgr)
{
    if (!mgr)
        return NULL;
    return mgr->last_error ? mgr->last_error : "";
}

static void clear_error(bgl_services *mgr)
{
    free(mgr->last_error);
    mgr->last_error = NULL;
}

static int owner_matches(const bgl_service *s, const char *owner)
{
    return !owner || strcmp(s->owner, owner) == 0;
}

int bgl_services_list(const bgl_services *mgr, const char *owner, bgl_service **out, size_t cap)
{
    if (!mgr || (cap && !out))
        return -EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        if (!owner_matches(mgr->svcs[i], owner))
            continue;
        if (n < cap)
            out[n] = mgr->svcs[i];
        n++;
    }
    return (int)n;
}

int bgl_services_find(const bgl_services *mgr, const char *name, bgl_service **out)
{
    if (!mgr || !name || !out)
        return -EINVAL;
    bgl_service *s = svc_lookup(mgr, name);
    if (!s)
        return -ENOENT;
    *out = s;
    return 0;
}

static int want_up(bgl_services *mgr, bgl_service **roots, size_t n)
{
    clear_error(mgr);
    int r = svc_want_closure(mgr, roots, n);
    if (r == 0)
        svc_schedule(mgr);
    return r;
}

int bgl_services_start(bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    bgl_service **roots = malloc((mgr->n ? mgr->n : 1) * sizeof *roots);
    if (!roots)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < mgr->n; i++)
        if (owner_matches(mgr->svcs[i], owner))
            roots[n++] = mgr->svcs[i];
    int r = want_up(mgr, roots, n);
    free(roots);
    return r;
}

int bgl_service_start(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    return want_up(svc->mgr, &svc, 1);
}

static void want_down(bgl_service *s)
{
    s->want = 0;
    if (s->restart_pending) {
        bgl_timer_stop(s->restart_timer);
        s->restart_pending = 0;
    }
}

static owner_scope *find_scope(const bgl_services *mgr, const char *owner)
{
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (strcmp(mgr->owners[i]->owner, owner) == 0)
            return mgr->owners[i];
    return NULL;
}

int bgl_services_stop(bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    for (size_t i = 0; i < mgr->n; i++)
        if (owner_matches(mgr->svcs[i], owner))
            want_down(mgr->svcs[i]);
    if (owner) {
        owner_scope *o = find_scope(mgr, owner);
        if (o)
            o->close_pending = 1;
    } else {
        for (size_t i = 0; i < mgr->n_owners; i++)
            mgr->owners[i]->close_pending = 1;
        mgr->close_pending = 1;
    }
    svc_schedule(mgr);
    return 0;
}

int bgl_service_stop(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    want_down(svc);
    svc_schedule(svc->mgr);
    return 0;
}

static int scope_pending(const owner_scope *o)
{
    return o->close_pending || bgl_resources_is_closing(o->res) > 0;
}

int bgl_services_active(const bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    int n = 0;
    for (size_t i = 0; i < mgr->n; i++)
        n += owner_matches(mgr->svcs[i], owner) && svc_is_active(mgr->svcs[i]);
    for (size_t i = 0; i < mgr->n_owners; i++)
        n += (!owner || strcmp(mgr->owners[i]->owner, owner) == 0) && scope_pending(mgr->owners[i]);
    if (!owner)
        n += mgr->close_pending || bgl_resources_is_closing(mgr->res) > 0;
    return n;
}

int bgl_services_exit_code(const bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    for (size_t i = 0; i < mgr->n; i++) {
        const bgl_service *s = mgr->svcs[i];
        if (s->state == BGL_SERVICE_FAILED && !svc_is_active(s))
            return 1;
    }
    return 0;
}

/* bgl_services_active(mgr, NULL) > 0, stopping at the first hit: hosts ask
 * this after every kick. */
static int any_active(const bgl_services *mgr)
{
    if (mgr->close_pending || bgl_resources_is_closing(mgr->res) > 0)
        return 1;
    for (size_t i = 0; i < mgr->n; i++)
        if (svc_is_active(mgr->svcs[i]))
            return 1;
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (scope_pending(mgr->owners[i]))
            return 1;
    return 0;
}

int bgl_nothing_left(const bgl_services *mgr, const bgl_tasks *tasks)
{
    if (!mgr && !tasks)
        return -EINVAL;
    if (tasks && bgl_tasks_active(tasks, NULL) > 0)
        return 0;
    return !(mgr && any_active(mgr));
}

int bgl_services_set_keepalive(bgl_services *mgr, bgl_tasks *tasks, int enable)
{
    if (!mgr)
        return -EINVAL;
    bgl_tasks *watch = enable ? tasks : NULL;
    if (watch != mgr->tasks) {
        if (watch && bgl__tasks_watch(watch, on_tasks_changed, mgr) < 0)
            return -ENOMEM;
        if (mgr->tasks)
            bgl__tasks_unwatch(mgr->tasks, on_tasks_changed, mgr);
        mgr->tasks = watch;
    }
    mgr->keepalive = enable != 0;
    if (!mgr->keepalive && mgr->holding) {
        bgl_loop_release(mgr->loop);
        mgr->holding = 0;
    }
    if (mgr->keepalive)
        svc_schedule(mgr);
    return 0;
}

static void keepalive_check(bgl_services *mgr)
{
    if (!mgr->keepalive)
        return;
    int left = !bgl_nothing_left(mgr, mgr->tasks);
    if (left && !mgr->holding) {
        mgr->holding = bgl_loop_hold(mgr->loop) == 0;
    } else if (!left && mgr->holding) {
        bgl_loop_release(mgr->loop);
        mgr->holding = 0;
        bgl_loop_stop(mgr->loop, bgl_services_exit_code(mgr));
    }
}

bgl_resources *bgl_services_resources(bgl_services *mgr)
{
    return mgr ? mgr->res : NULL;
}

int bgl_services_owner_resources(bgl_services *mgr, const char *owner, bgl_resources **out)
{
    if (!mgr || !owner || !*owner || !out)
        return -EINVAL;
    owner_scope *o = find_scope(mgr, owner);
    if (!o) {
        owner_scope **v = realloc(mgr->owners, (mgr->n_owners + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        mgr->owners = v;
        o = calloc(1, sizeof *o);
        if (!o)
            return -ENOMEM;
        o->owner = strdup(owner);
        int r = o->owner ? bgl__resources_new_owned(mgr->loop, on_scope_closed, NULL, mgr, &o->res)
                         : -ENOMEM;
        if (r < 0) {
            free(o->owner);
            free(o);
            return r;
        }
        mgr->owners[mgr->n_owners++] = o;
    }
    *out = o->res;
    return 0;
}

/* ---- services ------------------------------------------------------------ */

void bgl_service_config_init(bgl_service_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->restart = BGL_RESTART_NO;
    cfg->stop_timeout_ns = DEFAULT_TIMEOUT_NS;
    cfg->close_timeout_ns = DEFAULT_TIMEOUT_NS;
    cfg->restart_delay_ns = 100000000ull;
    cfg->restart_delay_max_ns = 30000000000ull;
    cfg->start_limit_burst = 5;
    cfg->start_limit_interval_ns = 10000000000ull;
}

static int config_valid(const bgl_service_config *c)
{
    if (!c->name || !*c->name || !c->owner || !*c->owner)
        return 0;
    if (c->restart != BGL_RESTART_NO && c->restart != BGL_RESTART_ON_FAILURE &&
        c->restart != BGL_RESTART_ALWAYS)
        return 0;
    if (!c->stop_timeout_ns || c->restart_delay_ns > c->restart_delay_max_ns)
        return 0;
    if (c->start_limit_burst && !c->start_limit_interval_ns)
        return 0;
    /* Timeouts are armed as int64 nanoseconds. */
    if (c->stop_timeout_ns > INT64_MAX || c->close_timeout_ns > INT64_MAX)
        return 0;
    for (const char *const *d = c->depends_on; d && *d; d++)
        if (!**d || strcmp(*d, c->name) == 0)
            return 0;
    return 1;
}

static void on_stop_timeout(bgl_timer *timer, void *userdata);
static void on_resources_closed(bgl_resources *rs, void *ud);

/* A push to a service that is not running: reconcile closes it. */
static void on_resource_pushed(bgl_resources *rs, void *ud)
{
    (void)rs;
    bgl_service *s = ud;
    if (!s->want && !svc_is_busy(s))
        svc_schedule(s->mgr);
}

int bgl_service_add(bgl_services *mgr, const bgl_service_config *cfg,
                    const bgl_service_hooks *hooks, void *userdata, bgl_service **out)
{
    if (!mgr || !cfg || !hooks || !hooks->start || !config_valid(cfg))
        return -EINVAL;
    clear_error(mgr);
    if (svc_lookup(mgr, cfg->name)) {
        mgr->last_error = bgl__strdupf("a service named '%s' already exists", cfg->name);
        return -EEXIST;
    }
    if (mgr->n == mgr->cap) {
        size_t cap = mgr->cap ? mgr->cap * 2 : 8;
        bgl_service **v = realloc(mgr->svcs, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        mgr->svcs = v;
        mgr->cap = cap;
    }
    bgl_service *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->mgr = mgr;
    s->cfg = *cfg;
    s->cfg.name = s->cfg.owner = NULL;
    s->cfg.depends_on = NULL;
    s->hooks = *hooks;
    s->userdata = userdata;
    s->state = BGL_SERVICE_STOPPED;
    s->changed_ns = svc_now(mgr);
    int r = -ENOMEM;
    s->name = strdup(cfg->name);
    s->owner = strdup(cfg->owner);
    if (!s->name || !s->owner)
        goto fail;
    for (const char *const *d = cfg->depends_on; d && *d; d++)
        s->n_deps++;
    if (s->n_deps && !(s->deps = calloc(s->n_deps, sizeof *s->deps)))
        goto fail;
    for (size_t i = 0; i < s->n_deps; i++)
        if (!(s->deps[i] = strdup(cfg->depends_on[i])))
            goto fail;
    if ((r = svc_restart_init(s)) < 0 ||
        (r = bgl_timer_new(mgr->loop, on_stop_timeout, s, &s->stop_timer)) < 0 ||
        (r = bgl_timer_new(mgr->loop, svc_restart_fired, s, &s->restart_timer)) < 0 ||
        (r = bgl__resources_new_owned(mgr->loop, on_resources_closed, on_resource_pushed, s,
                                      &s->res)) < 0)
        goto fail;
    mgr->svcs[mgr->n++] = s;
    if (out)
        *out = s;
    return 0;
fail:
    s->hooks.destroy = NULL;   /* the caller keeps its userdata on failure */
    service_destroy(s);
    return r;
}

int bgl_service_remove(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    bgl_services *mgr = svc->mgr;
    if (mgr->depth || svc->want || svc_is_busy(svc) || svc->restart_pending || stack_busy(svc->res))
        return -EBUSY;
    size_t i = 0;
    while (mgr->svcs[i] != svc)
        i++;
    memmove(&mgr->svcs[i], &mgr->svcs[i + 1], (mgr->n - i - 1) * sizeof *mgr->svcs);
    mgr->n--;
    service_destroy(svc);
    svc_schedule(mgr);
    return 0;
}

/* ---- the state machine ---------------------------------------------------- */

/* The work ended: close the service's resources, then settle in `st`. */
static void service_end(bgl_service *s, bgl_service_state st, char *error)
{
    bgl_timer_stop(s->stop_timer);
    s->stable = s->state == BGL_SERVICE_RUNNING &&
                svc_now(s->mgr) - s->running_since_ns >= s->cfg.restart_delay_max_ns;
    s->ending = 1;
    s->end_state = st;
    free(s->end_error);
    s->end_error = error;
    bgl_resources_close(s->res, (int64_t)s->cfg.close_timeout_ns);
    /* Still closing: show that it is winding down. */
    if (s->ending && s->state != BGL_SERVICE_STOPPING)
        set_state(s, BGL_SERVICE_STOPPING);
    svc_schedule(s->mgr);
}

static void on_resources_closed(bgl_resources *rs, void *ud)
{
    (void)rs;
    bgl_service *s = ud;
    if (!s->ending)   /* a close not caused by the service's end */
        return;
    s->ending = 0;
    if (s->end_error) {
        svc_set_error(s, s->end_error);
        s->end_error = NULL;
    }
    set_state(s, s->end_state);
    if (!s->stop_requested)
        svc_after_end(s);
}

static void begin_stop(bgl_service *s)
{
    s->stop_requested = 1;
    s->stop_timed_out = 0;
    s->cancelled = 0;
    set_state(s, BGL_SERVICE_STOPPING);
    /* The state callback may already have reported the end. */
    if (s->state != BGL_SERVICE_STOPPING || s->ending)
        return;
    bgl_timer_start(s->stop_timer, s->cfg.stop_timeout_ns, 0);
    if (s->hooks.stop)
        s->hooks.stop(s, s->userdata);
}

static void do_start(bgl_service *s)
{
    uint64_t now = svc_now(s->mgr);
    if (svc_start_limit_hit(s, now)) {
        s->want = 0;
        svc_set_error(s, bgl__strdupf("start limit hit: %u starts within %g s",
                                      s->cfg.start_limit_burst,
                                      secs(s->cfg.start_limit_interval_ns)));
        set_state(s, BGL_SERVICE_FAILED);
        return;
    }
    svc_record_start(s, now);
    s->stop_requested = 0;
    s->cancelled = 0;
    set_state(s, BGL_SERVICE_STARTING);
    if (s->state != BGL_SERVICE_STARTING || s->ending)
        return;   /* ended from the state callback: nothing to launch */
    int r = s->hooks.start(s, s->userdata);
    /* The hook may have reported the end itself already. */
    if (r < 0 && s->state == BGL_SERVICE_STARTING && !s->ending)
        service_end(s, BGL_SERVICE_FAILED,
                    bgl__strdupf("start hook failed: %s", bgl_strerror(r)));
}

static int scopes_idle(const bgl_services *mgr, const char *owner)
{
    for (size_t i = 0; i < mgr->n; i++)
        if (owner_matches(mgr->svcs[i], owner) && svc_is_busy(mgr->svcs[i]))
            return 0;
    return 1;
}

/* The largest close timeout of the owner's services; the default only when
 * it has none (a largest timeout of 0 means "do not wait"). */
static uint64_t owner_close_timeout(const bgl_services *mgr, const char *owner)
{
    uint64_t t = 0;
    int any = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        if (owner_matches(mgr->svcs[i], owner)) {
            any = 1;
            if (mgr->svcs[i]->cfg.close_timeout_ns > t)
                t = mgr->svcs[i]->cfg.close_timeout_ns;
        }
    }
    return any ? t : DEFAULT_TIMEOUT_NS;
}

/* Close owner stacks (and the manager's) whose stop has brought their
 * services down. */
static void close_scopes(bgl_services *mgr)
{
    int owners_done = 1;
    for (size_t i = 0; i < mgr->n_owners; i++) {
        owner_scope *o = mgr->owners[i];
        if (o->close_pending && scopes_idle(mgr, o->owner)) {
            o->close_pending = 0;
            bgl_resources_close(o->res, (int64_t)owner_close_timeout(mgr, o->owner));
        }
        owners_done &= !scope_pending(o);
    }
    if (mgr->close_pending && owners_done && scopes_idle(mgr, NULL)) {
        mgr->close_pending = 0;
        bgl_resources_close(mgr->res, (int64_t)owner_close_timeout(mgr, NULL));
    }
}

static void reconcile(bgl_services *mgr)
{
    mgr->depth++;
    /* Repeat while something changed: a hook that reports readiness or its
     * end at once lets the next service go in the same pass.  Bounded: each
     * pass that changes something moves a service forward. */
    for (size_t pass = 0; pass <= 2 * mgr->n + 1; pass++) {
        int changed = 0;
        for (size_t i = 0; i < mgr->n; i++) {
            bgl_service *s = mgr->svcs[i];
            if (svc_is_up(s)) {
                if (svc_should_be_down(s) && !svc_has_busy_dependents(s)) {
                    begin_stop(s);
                    changed = 1;
                }
            } else if (svc_can_start(s)) {
                do_start(s);
                changed = 1;
            } else if (!s->want && !svc_is_busy(s) && bgl_resources_count(s->res) > 0) {
                /* Pushed while it was not running: its scope is over. */
                bgl_resources_close(s->res, (int64_t)s->cfg.close_timeout_ns);
            }
        }
        if (!changed)
            break;
    }
    close_scopes(mgr);
    mgr->depth--;
    keepalive_check(mgr);
}

static void on_stop_timeout(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_service *s = userdata;
    bgl_services *mgr = s->mgr;
    if (s->state != BGL_SERVICE_STOPPING || s->ending)
        return;
    s->stop_timed_out = 1;
    double t = secs(s->cfg.stop_timeout_ns);
    mgr->depth++;
    if (!s->cancelled && s->hooks.cancel) {
        s->cancelled = 1;
        svc_set_error(s, bgl__strdupf("stop timed out after %g s, cancelled", t));
        svc_notify(s, s->state);
        bgl_timer_start(s->stop_timer, s->cfg.stop_timeout_ns, 0);
        s->hooks.cancel(s, s->userdata);
    } else {
        service_end(s, BGL_SERVICE_FAILED,
                    s->cancelled
                        ? bgl__strdupf("stop timed out after %g s, cancelled; did not exit, "
                                       "abandoned", t)
                        : bgl__strdupf("stop timed out after %g s, no cancel hook; abandoned",
                                       t));
    }
    mgr->depth--;
}

int bgl_service_ready(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    if (svc->ending)
        return -ESRCH;
    if (svc->state == BGL_SERVICE_RUNNING)
        return -EALREADY;
    if (svc->state != BGL_SERVICE_STARTING)
        return -ESRCH;
    set_state(svc, BGL_SERVICE_RUNNING);
    return 0;
}

int bgl_service_exited(bgl_service *svc, int failed, const char *error)
{
    if (!svc)
        return -EINVAL;
    if (svc->ending || (svc->state != BGL_SERVICE_STARTING && svc->state != BGL_SERVICE_RUNNING &&
                        svc->state != BGL_SERVICE_STOPPING))
        return -ESRCH;
    bgl_service_state st;
    char *text = NULL;
    const char *why = error && *error ? error : "failed";
    if (svc->stop_requested && svc->stop_timed_out) {
        st = BGL_SERVICE_FAILED;
        /* Whatever the cancelled work reports, the timeout is the story. */
        text = bgl__strdupf("stop timed out after %g s, cancelled", secs(svc->cfg.stop_timeout_ns));
    } else if (failed) {
        st = BGL_SERVICE_FAILED;
        text = strdup(why);
    } else {
        st = svc->stop_requested ? BGL_SERVICE_STOPPED : BGL_SERVICE_EXITED;
    }
    svc->mgr->depth++;
    service_end(svc, st, text);
    svc->mgr->depth--;
    return 0;
}

/* ---- queries ------------------------------------------------------------- */

int bgl_service_get_info(const bgl_service *svc, bgl_service_info *info)
{
    if (!svc || !info)
        return -EINVAL;
    memset(info, 0, sizeof *info);
    info->name = svc->name;
    info->owner = svc->owner;
    info->state = svc->state;
    info->restarts = svc->restarts;
    info->error = svc->error;
    info->changed_ns = svc->changed_ns;
    info->wanted = svc->want;
    info->restart_pending = svc->restart_pending;
    info->restart_at_ns = svc->restart_at_ns;
    info->stop_timed_out = svc->stop_timed_out;
    info->waiting_for = svc_waiting_for(svc);
    return 0;
}

int bgl_service_get_state(const bgl_service *svc)
{
    return svc ? (int)svc->state : -EINVAL;
}

const char *bgl_service_name(const bgl_service *svc)
{
    return svc ? svc->name : NULL;
}

const char *bgl_service_owner(const bgl_service *svc)
{
    return svc ? svc->owner : NULL;
}

const char *bgl_service_error(const bgl_service *svc)
{
    return svc ? svc->error : NULL;
}

void *bgl_service_userdata(const bgl_service *svc)
{
    return svc ? svc->userdata : NULL;
}

bgl_services *bgl_service_manager(const bgl_service *svc)
{
    return svc ? svc->mgr : NULL;
}

bgl_resources *bgl_service_resources(bgl_service *svc)
{
    return svc ? svc->res : NULL;
}

const char *bgl_service_state_name(int state)
{
    switch (state) {
    case BGL_SERVICE_STOPPED: return "stopped";
    case BGL_SERVICE_STARTING: return "starting";
    case BGL_SERVICE_RUNNING: return "running";
    case BGL_SERVICE_STOPPING: return "stopping";
    case BGL_SERVICE_EXITED: return "exited";
    case BGL_SERVICE_FAILED: return "failed";
    default: return "unknown";
    }
}

const char *bgl_restart_policy_name(int policy)
{
    switch (policy) {
    case BGL_RESTART_NO: return "no";
    case BGL_RESTART_ON_FAILURE: return "on-failure";
    case BGL_RESTART_ALWAYS: return "always";
    default: return "unknown";
    }
}
