/* service.c - the service manager's API: the manager, registration and
 * validation, removal, the task registry and keep-alive, and queries (see
 * bgloop/service.h).  The state machine is in service-run.c, stopping in
 * service-stop.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service-internal.h"

static void on_tasks_changed(void *ud, int gone)
{
    bgl_services *mgr = ud;
    if (gone)   /* the registry is being freed: stop counting it */
        mgr->tasks = NULL;
    bgli_svc_schedule(mgr);
}

static void on_scope_closed(bgl_resources *rs, void *ud)
{
    (void)rs;
    bgli_svc_schedule(ud);
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
    int r = bgli_svc_schedule_init(mgr);
    if (r == 0) {
        r = bgli_resources_new_owned(loop, on_scope_closed, NULL, mgr, &mgr->res);
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
    bgli_resources_free_owned(s->res);
    free(s->dep_names);
    free(s->deps);
    free(s->rdeps);
    free(s->name);
    free(s->owner);
    free(s->error);
    free(s->end_error);
    free(s->starts);
    free(s);
}

int bgl_services_free(bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    if (mgr->depth || bgli_stack_busy(mgr->res) || bgli_stops_pending_done(mgr))
        return -EBUSY;
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_svc_is_busy(mgr->svcs[i]) || bgli_stack_busy(mgr->svcs[i]->res))
            return -EBUSY;
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (bgli_stack_busy(mgr->owners[i]->res))
            return -EBUSY;
    if (mgr->holding)
        bgl_loop_release(mgr->loop);
    if (mgr->observer)
        mgr->observer->gone(mgr->observer_ud);
    mgr->observer = NULL;
    if (mgr->tasks)
        bgli_tasks_unwatch(mgr->tasks, on_tasks_changed, mgr);
    mgr->tasks = NULL;
    bgli_stops_free(mgr);
    /* Take the services out before destroying them: a destroy hook that
     * looks the manager up must not reach one already freed.  Services its
     * hooks add meanwhile are destroyed in the next round. */
    while (mgr->n) {
        bgl_service **v = mgr->svcs;
        size_t n = mgr->n;
        mgr->svcs = NULL;
        mgr->n = mgr->cap = 0;
        mgr->n_unresolved = 0;
        free(mgr->table);
        mgr->table = NULL;
        mgr->table_cap = 0;
        for (size_t i = 0; i < n; i++)
            service_destroy(v[i]);
        free(v);
    }
    for (size_t i = 0; i < mgr->n_owners; i++) {
        bgli_resources_free_owned(mgr->owners[i]->res);
        free(mgr->owners[i]->owner);
        free(mgr->owners[i]);
    }
    free(mgr->owners);
    free(mgr->svcs);
    free(mgr->table);
    free(mgr->walk_stack);
    bgli_resources_free_owned(mgr->res);
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

void bgli_svc_clear_error(bgl_services *mgr)
{
    free(mgr->last_error);
    mgr->last_error = NULL;
}

/* Set the text of last_error and return err. */
int bgli_svc_refuse(bgl_services *mgr, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(mgr->last_error);
    mgr->last_error = strdup(buf);
    return err;
}

int bgl_services_list(const bgl_services *mgr, const char *owner, bgl_service **out, size_t cap)
{
    if (!mgr || (cap && !out))
        return -EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        if (!bgli_owner_matches(mgr->svcs[i], owner))
            continue;
        if (n < cap)
            out[n] = mgr->svcs[i];
        n++;
    }
    return (int)n;
}

int bgl_services_list_failed(const bgl_services *mgr, bgl_service **out, size_t cap)
{
    if (!mgr || (cap && !out))
        return -EINVAL;
    size_t n = 0;
    bgli_walk_begin(mgr);
    for (size_t i = 0; i < mgr->n; i++) {
        if (!bgli_svc_failed_for_good(mgr->svcs[i]))
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
    bgl_service *s = bgli_svc_lookup(mgr, name);
    if (!s)
        return -ENOENT;
    *out = s;
    return 0;
}

static int want_up(bgl_services *mgr, bgl_service **roots, size_t n)
{
    bgli_svc_clear_error(mgr);
    int r = bgli_svc_want_closure(mgr, roots, n);
    if (r == 0)
        bgli_svc_schedule(mgr);
    return r;
}

int bgl_services_start(bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    bgli_svc_clear_error(mgr);
    if (owner && !*owner)
        return bgli_svc_refuse(mgr, -EINVAL, "an owner must be a non-empty string");
    bgl_service **roots = malloc((mgr->n ? mgr->n : 1) * sizeof *roots);
    if (!roots)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_owner_matches(mgr->svcs[i], owner))
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

int bgl_services_active(const bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    int n = 0;
    bgli_walk_begin(mgr);
    for (size_t i = 0; i < mgr->n; i++)
        n += bgli_owner_matches(mgr->svcs[i], owner) && bgli_svc_is_active(mgr->svcs[i]);
    for (size_t i = 0; i < mgr->n_owners; i++)
        n += bgli_owner_covers(owner, mgr->owners[i]->owner) &&
             bgli_scope_pending(mgr->owners[i]);
    if (!owner)
        n += mgr->close_pending || bgl_resources_is_closing(mgr->res) > 0;
    return n + bgli_stops_awaited(mgr, owner);
}

int bgl_services_exit_code(const bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    bgli_walk_begin(mgr);
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_svc_failed_for_good(mgr->svcs[i]))
            return 1;
    return 0;
}

int bgl_services_ready(const bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    size_t wanted = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        const bgl_service *s = mgr->svcs[i];
        if (!s->want)
            continue;
        wanted++;
        if (s->state != BGL_SERVICE_RUNNING || s->ending)
            return 0;
    }
    return wanted > 0;
}

int bgl_services_nothing_left(const bgl_services *mgr)
{
    if (!mgr)
        return -EINVAL;
    if (mgr->tasks && bgl_tasks_active(mgr->tasks, NULL) > 0)
        return 0;
    return !bgli_any_active(mgr);
}

int bgl_services_set_tasks(bgl_services *mgr, bgl_tasks *tasks)
{
    if (!mgr)
        return -EINVAL;
    if (tasks == mgr->tasks)
        return 0;
    if (tasks && bgli_tasks_watch(tasks, on_tasks_changed, mgr) < 0)
        return -ENOMEM;
    if (mgr->tasks)
        bgli_tasks_unwatch(mgr->tasks, on_tasks_changed, mgr);
    mgr->tasks = tasks;
    bgli_svc_schedule(mgr);
    return 0;
}

int bgl_services_set_keepalive(bgl_services *mgr, int enable)
{
    if (!mgr)
        return -EINVAL;
    mgr->keepalive = enable != 0;
    mgr->keepalive_fresh = mgr->keepalive;
    if (!mgr->keepalive && mgr->holding) {
        bgl_loop_release(mgr->loop);
        mgr->holding = 0;
    }
    if (mgr->keepalive)
        bgli_svc_schedule(mgr);
    return 0;
}

bgl_resources *bgl_services_loop_resources(bgl_services *mgr)
{
    return mgr ? mgr->res : NULL;
}

int bgl_services_owner_resources(bgl_services *mgr, const char *owner, bgl_resources **out)
{
    if (!mgr || !owner || !*owner || !out)
        return -EINVAL;
    owner_scope *o = bgli_find_scope(mgr, owner);
    if (!o) {
        owner_scope **v = realloc(mgr->owners, (mgr->n_owners + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        mgr->owners = v;
        o = calloc(1, sizeof *o);
        if (!o)
            return -ENOMEM;
        o->owner = strdup(owner);
        int r = o->owner ? bgli_resources_new_owned(mgr->loop, on_scope_closed, NULL, mgr, &o->res)
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

/* ---- registration ------------------------------------------------------------ */

void bgl_service_config_init(bgl_service_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->restart = BGL_RESTART_NO;
    cfg->stop_timeout_ns = BGLI_DEFAULT_TIMEOUT_NS;
    cfg->close_timeout_ns = BGL_CLOSE_TIMEOUT_AUTO;
    cfg->restart_delay_ns = 100000000ull;
    cfg->restart_delay_max_ns = 30000000000ull;
    cfg->start_limit_burst = 5;
    cfg->start_limit_interval_ns = 10000000000ull;
}

/* Every refusal names the service and the field. */
static int check_config(bgl_services *mgr, const bgl_service_config *c,
                        const bgl_service_hooks *hooks)
{
    if (!c)
        return bgli_svc_refuse(mgr, -EINVAL, "bgl_service_add: no configuration (cfg is NULL)");
    if (!c->name || !*c->name)
        return bgli_svc_refuse(mgr, -EINVAL, "a service needs a non-empty name");
    const char *n = c->name;
    if (!hooks || !hooks->start)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': no start hook", n);
    if (!c->owner || !*c->owner)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': owner is missing or empty", n);
    if (c->restart != BGL_RESTART_NO && c->restart != BGL_RESTART_ON_FAILURE &&
        c->restart != BGL_RESTART_ALWAYS)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': unknown restart policy %d", n, (int)c->restart);
    /* Timeouts are armed as int64 nanoseconds. */
    if (c->stop_timeout_ns > INT64_MAX)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': stop_timeout (%g s) is above INT64_MAX ns", n,
                      secs(c->stop_timeout_ns));
    if (c->close_timeout_ns > INT64_MAX && c->close_timeout_ns != BGL_CLOSE_TIMEOUT_AUTO)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': close_timeout (%g s) is above INT64_MAX ns", n,
                      secs(c->close_timeout_ns));
    if (c->restart_delay_ns > c->restart_delay_max_ns)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': restart_delay_max (%g s) is below "
                      "restart_delay (%g s)", n, secs(c->restart_delay_max_ns),
                      secs(c->restart_delay_ns));
    if (c->start_limit_burst > BGL_START_LIMIT_BURST_MAX)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': start_limit_burst %u is above %u",
                               n, c->start_limit_burst, BGL_START_LIMIT_BURST_MAX);
    if (c->start_limit_burst && !c->start_limit_interval_ns)
        return bgli_svc_refuse(mgr, -EINVAL, "service '%s': start_limit_burst %u needs a "
                      "start_limit_interval above 0", n, c->start_limit_burst);
    size_t i = 0;
    for (const char *const *d = c->depends_on; d && *d; d++, i++) {
        if (!**d)
            return bgli_svc_refuse(mgr, -EINVAL, "service '%s': dependency %zu has an empty name", n, i);
        if (strcmp(*d, n) == 0)
            return bgli_svc_refuse(mgr, -EINVAL, "service '%s': depends on itself", n);
    }
    if (bgli_svc_lookup(mgr, n))
        return bgli_svc_refuse(mgr, -EEXIST, "a service named '%s' is already registered", n);
    return 0;
}

static bgl_service *service_new(bgl_services *mgr, const bgl_service_config *cfg,
                                const bgl_service_hooks *hooks, void *userdata)
{
    bgl_service *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->mgr = mgr;
    s->cfg = *cfg;
    s->cfg.name = s->cfg.owner = NULL;
    s->cfg.depends_on = NULL;
    s->hooks = *hooks;
    s->userdata = userdata;
    s->state = BGL_SERVICE_STOPPED;
    s->changed_ns = bgli_svc_now(mgr);
    s->name = strdup(cfg->name);
    s->owner = strdup(cfg->owner);
    if (!s->name || !s->owner)
        goto fail;
    size_t chars = 0;
    for (const char *const *d = cfg->depends_on; d && *d; d++) {
        s->n_deps++;
        chars += strlen(*d) + 1;
    }
    if (s->n_deps) {
        /* The pointers and the strings in one block: dense graphs have many. */
        s->dep_names = malloc(s->n_deps * sizeof *s->dep_names + chars);
        s->deps = calloc(s->n_deps, sizeof *s->deps);
        if (!s->dep_names || !s->deps)
            goto fail;
        char *p = (char *)(s->dep_names + s->n_deps);
        for (size_t i = 0; i < s->n_deps; i++) {
            size_t len = strlen(cfg->depends_on[i]) + 1;
            memcpy(p, cfg->depends_on[i], len);
            s->dep_names[i] = p;
            p += len;
        }
    }
    if (bgli_svc_restart_init(s) < 0 || bgli_svc_init_run(s) < 0)
        goto fail;
    return s;
fail:
    s->hooks.destroy = NULL;   /* the caller keeps its userdata on failure */
    service_destroy(s);
    return NULL;
}

int bgl_service_add(bgl_services *mgr, const bgl_service_config *cfg,
                    const bgl_service_hooks *hooks, void *userdata, bgl_service **out)
{
    if (!mgr)
        return -EINVAL;
    bgli_svc_clear_error(mgr);
    int r = check_config(mgr, cfg, hooks);
    if (r < 0)
        return r;
    if (mgr->n == mgr->cap) {
        size_t cap = mgr->cap ? mgr->cap * 2 : 8;
        bgl_service **v = realloc(mgr->svcs, cap * sizeof *v);
        if (!v)
            return bgli_svc_refuse(mgr, -ENOMEM, "service '%s': out of memory", cfg->name);
        mgr->svcs = v;
        mgr->cap = cap;
    }
    bgl_service *s = service_new(mgr, cfg, hooks, userdata);
    if (!s)
        return bgli_svc_refuse(mgr, -ENOMEM, "service '%s': out of memory", cfg->name);
    if (bgli_deps_insert(mgr, s) < 0) {
        s->hooks.destroy = NULL;
        service_destroy(s);
        return bgli_svc_refuse(mgr, -ENOMEM, "service '%s': out of memory", cfg->name);
    }
    mgr->svcs[mgr->n++] = s;
    bgli_deps_added(mgr, s);
    if (out)
        *out = s;
    return 0;
}

/* ---- removal ------------------------------------------------------------------- */

static void take_out(bgl_services *mgr, size_t i)
{
    bgl_service *s = mgr->svcs[i];
    memmove(&mgr->svcs[i], &mgr->svcs[i + 1], (mgr->n - i - 1) * sizeof *mgr->svcs);
    mgr->n--;
    bgli_deps_detach(mgr, s);
}

int bgl_service_remove(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    bgl_services *mgr = svc->mgr;
    bgli_svc_clear_error(mgr);
    if (mgr->depth)
        return bgli_svc_refuse(mgr, -EBUSY, "service '%s' cannot be removed from a hook or callback",
                      svc->name);
    if (bgli_svc_in_use(svc))
        return bgli_svc_refuse(mgr, -EBUSY, "service '%s' is still active or wanted; stop it first",
                      svc->name);
    size_t i = 0;
    while (mgr->svcs[i] != svc)
        i++;
    take_out(mgr, i);
    service_destroy(svc);
    bgli_svc_schedule(mgr);
    return 0;
}

int bgl_services_remove(bgl_services *mgr, const char *owner)
{
    if (!mgr)
        return -EINVAL;
    bgli_svc_clear_error(mgr);
    if (owner && !*owner)
        return bgli_svc_refuse(mgr, -EINVAL, "an owner must be a non-empty string");
    if (mgr->depth)
        return bgli_svc_refuse(mgr, -EBUSY, "services cannot be removed from a hook or callback");
    size_t busy = 0, len = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        if (bgli_owner_matches(mgr->svcs[i], owner) && bgli_svc_in_use(mgr->svcs[i])) {
            busy++;
            len += strlen(mgr->svcs[i]->name) + 2;
        }
    }
    if (busy) {
        char *text = malloc(len + sizeof "still active or wanted: ");
        if (text) {
            char *p = text + sprintf(text, "still active or wanted: ");
            const char *sep = "";
            for (size_t i = 0; i < mgr->n; i++) {
                if (bgli_owner_matches(mgr->svcs[i], owner) && bgli_svc_in_use(mgr->svcs[i])) {
                    p += sprintf(p, "%s%s", sep, mgr->svcs[i]->name);
                    sep = ", ";
                }
            }
        }
        free(mgr->last_error);
        mgr->last_error = text;
        return -EBUSY;
    }
    bgl_service **gone = malloc((mgr->n ? mgr->n : 1) * sizeof *gone);
    if (!gone)
        return bgli_svc_refuse(mgr, -ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < mgr->n;) {
        if (bgli_owner_matches(mgr->svcs[i], owner)) {
            gone[n++] = mgr->svcs[i];
            take_out(mgr, i);
        } else {
            i++;
        }
    }
    /* Taken out first: destroy hooks see none of them. */
    for (size_t i = 0; i < n; i++)
        service_destroy(gone[i]);
    free(gone);
    if (n)
        bgli_svc_schedule(mgr);
    return (int)n;
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
    info->waiting_for = bgli_svc_waiting_for(svc);
    bgli_walk_begin(svc->mgr);
    info->failed_for_good = bgli_svc_failed_for_good(svc);
    info->tasks_abandoned = svc->tasks_abandoned;
    info->abandoned = svc->abandoned;
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
