/* service-stop.c - stopping: the stop hook and stop timeout, cancel and
 * abandon, owner stops with a deadline (bgl_services_stop_full()), the wait
 * for a run's or an owner's registry entries, and closing owner and manager
 * resource stacks once a stop brought their services down. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service-internal.h"

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

int bgli_owner_covers(const char *a, const char *b)
{
    return !a || !b || strcmp(a, b) == 0;
}

/* ---- one service ------------------------------------------------------------ */

/* `after_ns` passed since the stop without an end: cancel (then wait the
 * grace), or abandon at once when there is nothing to cancel. */
static void stop_expired(bgl_service *s, uint64_t after_ns)
{
    bgl_services *mgr = s->mgr;
    s->stop_timed_out = 1;
    s->expired_ns = after_ns;
    double t = secs(after_ns);
    mgr->depth++;
    if (!s->cancelled && s->hooks.cancel) {
        s->cancelled = 1;
        bgli_svc_set_error(s, bgli_strdupf("stop timed out after %g s, cancelled", t));
        bgli_svc_notify(s, s->state);
        bgl_timer_start(s->stop_timer, bgli_svc_grace(s), 0);
        s->hooks.cancel(s, s->userdata);
    } else {
        s->abandoned = 1;
        bgli_svc_end(s, BGL_SERVICE_FAILED,
                     bgli_strdupf("stop timed out after %g s, no cancel hook; abandoned", t));
    }
    mgr->depth--;
}

void bgli_svc_begin_stop(bgl_service *s)
{
    s->stop_requested = 1;
    s->stop_timed_out = 0;
    s->abandoned = 0;
    s->cancelled = 0;
    s->cancel_is_stop = 0;
    bgli_svc_set_state(s, BGL_SERVICE_STOPPING);
    /* The state callback may already have reported the end. */
    if (s->state != BGL_SERVICE_STOPPING || s->ending)
        return;
    int force = s->force_cancel;
    s->force_cancel = 0;
    int at_once = force || s->cfg.stop_timeout_ns == 0;
    bgl_timer_start(s->stop_timer, at_once ? bgli_svc_grace(s) : s->cfg.stop_timeout_ns, 0);
    if (s->hooks.stop)
        s->hooks.stop(s, s->userdata);
    if (!at_once || s->state != BGL_SERVICE_STOPPING || s->ending)
        return;
    if (force) {
        stop_expired(s, s->force_ns);
    } else if (s->hooks.cancel) {
        s->cancelled = 1;
        s->cancel_is_stop = 1;
        s->mgr->depth++;
        s->hooks.cancel(s, s->userdata);
        s->mgr->depth--;
    }
}

void bgli_svc_stop_timeout(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_service *s = userdata;
    bgl_services *mgr = s->mgr;
    if (s->awaiting_tasks) {
        /* Its tasks ignored cancellation for a whole grace: stop waiting. */
        if (mgr->tasks)
            s->tasks_abandoned = (unsigned)bgli_tasks_abandon(mgr->tasks, s->owner, s->name);
        bgli_svc_close_run(s);
        return;
    }
    if (s->state != BGL_SERVICE_STOPPING || s->ending)
        return;
    double g = secs(bgli_svc_grace(s));
    if (s->cancel_is_stop) {
        s->stop_timed_out = 1;
        s->expired_ns = bgli_svc_grace(s);
        s->abandoned = 1;
        mgr->depth++;
        bgli_svc_end(s, BGL_SERVICE_FAILED,
                     bgli_strdupf("cancelled at once (stop timeout 0); did not exit within "
                                  "%g s, abandoned", g));
        mgr->depth--;
    } else if (!s->stop_timed_out) {
        stop_expired(s, bgli_svc_grace(s));
    } else {
        s->abandoned = 1;
        mgr->depth++;
        bgli_svc_end(s, BGL_SERVICE_FAILED,
                     bgli_strdupf("stop timed out after %g s, cancelled; did not exit, "
                                  "abandoned", secs(s->expired_ns)));
        mgr->depth--;
    }
}

void bgli_svc_want_down(bgl_service *s)
{
    bgli_svc_set_want(s, 0);
    if (s->restart_pending) {
        bgl_timer_stop(s->restart_timer);
        s->restart_pending = 0;
    }
}

int bgl_service_stop(bgl_service *svc)
{
    if (!svc)
        return -EINVAL;
    bgli_svc_want_down(svc);
    bgli_svc_schedule(svc->mgr);
    return 0;
}

/* ---- owner stops ---------------------------------------------------------------- */

owner_scope *bgli_find_scope(const bgl_services *mgr, const char *owner)
{
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (strcmp(mgr->owners[i]->owner, owner) == 0)
            return mgr->owners[i];
    return NULL;
}

int bgli_scope_pending(const owner_scope *o)
{
    return o->close_pending || bgl_resources_is_closing(o->res) > 0;
}

static int owner_idle(const bgl_services *mgr, const char *owner)
{
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_owner_matches(mgr->svcs[i], owner) && bgli_svc_is_busy(mgr->svcs[i]))
            return 0;
    return 1;
}

/* The deadline passed: services of the owner that are still not down are
 * treated as if their own stop timeout had expired. */
static void force_cancel(bgl_services *mgr, const stop_op *op)
{
    mgr->depth++;
    for (size_t i = 0; i < mgr->n; i++) {
        bgl_service *s = mgr->svcs[i];
        if (!bgli_owner_matches(s, op->owner) || s->want)
            continue;
        if (bgli_svc_is_up(s)) {
            /* Its stop waits for dependents: cancel as soon as it begins. */
            s->force_cancel = 1;
            s->force_ns = op->timeout_ns;
        } else if (s->state == BGL_SERVICE_STOPPING && !s->ending && s->stop_requested &&
                   !s->cancelled && !s->stop_timed_out) {
            stop_expired(s, op->timeout_ns);
        }
    }
    mgr->depth--;
}

static void on_op_timer(bgl_timer *timer, void *userdata)
{
    (void)timer;
    stop_op *op = userdata;
    op->deadline_passed = 1;
    if (op->phase == OP_SERVICES)
        force_cancel(op->mgr, op);
    bgli_svc_schedule(op->mgr);
}

static void op_free(stop_op *op)
{
    bgl_timer_free(op->timer);
    free(op->owner);
    free(op);
}

int bgl_services_stop_full(bgl_services *mgr, const char *owner, int64_t timeout_ns,
                           bgl_services_stopped_fn done, void *userdata)
{
    if (!mgr)
        return -EINVAL;
    bgli_svc_clear_error(mgr);
    if (owner && !*owner)
        return bgli_svc_refuse(mgr, -EINVAL, "an owner must be a non-empty string");
    stop_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->mgr = mgr;
    op->done = done;
    op->userdata = userdata;
    stop_op **v = realloc(mgr->ops, (mgr->n_ops + 1) * sizeof *v);
    if (v)
        mgr->ops = v;
    if (!v || (owner && !(op->owner = strdup(owner))) ||
        bgl_timer_new(mgr->loop, on_op_timer, op, &op->timer) < 0) {
        op_free(op);
        return -ENOMEM;
    }
    if (timeout_ns >= 0) {
        op->has_deadline = 1;
        op->timeout_ns = (uint64_t)timeout_ns;
        bgl_timer_start(op->timer, (uint64_t)timeout_ns, 0);
    }
    mgr->ops[mgr->n_ops++] = op;
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_owner_matches(mgr->svcs[i], owner))
            bgli_svc_want_down(mgr->svcs[i]);
    if (owner) {
        owner_scope *o = bgli_find_scope(mgr, owner);
        if (o)
            o->close_pending = 1;
    } else {
        for (size_t i = 0; i < mgr->n_owners; i++)
            mgr->owners[i]->close_pending = 1;
        mgr->close_pending = 1;
    }
    if (mgr->observer)
        mgr->observer->stopping(owner, timeout_ns, mgr->observer_ud);
    bgli_svc_schedule(mgr);
    return 0;
}

int bgl_services_stop(bgl_services *mgr, const char *owner)
{
    return bgl_services_stop_full(mgr, owner, -1, NULL, NULL);
}

/* How long an owner's leftover tasks are awaited without a caller's
 * deadline: the longest stop timeout of its services. */
static uint64_t owner_task_wait(const bgl_services *mgr, const char *owner)
{
    uint64_t t = BGLI_MIN_GRACE_NS;
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_owner_matches(mgr->svcs[i], owner) && mgr->svcs[i]->cfg.stop_timeout_ns > t)
            t = mgr->svcs[i]->cfg.stop_timeout_ns;
    return t;
}

/* The largest close timeout of the owner's services; the default only when
 * it has none (a largest timeout of 0 means "do not wait"). */
static uint64_t owner_close_timeout(const bgl_services *mgr, const char *owner)
{
    uint64_t t = 0;
    int any = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        if (bgli_owner_matches(mgr->svcs[i], owner)) {
            uint64_t c = bgli_svc_close_timeout(mgr->svcs[i]);
            any = 1;
            if (c > t)
                t = c;
        }
    }
    return any ? t : BGLI_DEFAULT_TIMEOUT_NS;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The services a stop of `owner` may have to wait for: every one that is up
 * or winding down (a dependent of another owner stops first).  Services
 * already down cost nothing. */
static int may_stop(const bgl_service *s)
{
    return bgli_svc_is_busy(s) || s->restart_pending;
}

int bgl_services_stop_bound(const bgl_services *mgr, const char *owner, int64_t timeout_ns,
                            uint64_t *bound_ns)
{
    if (!mgr || !bound_ns || (owner && !*owner))
        return -EINVAL;
    uint64_t timeouts = 0, after = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        const bgl_service *s = mgr->svcs[i];
        if (!may_stop(s))
            continue;
        timeouts = add_sat(timeouts, s->cfg.stop_timeout_ns);
        /* the cancel grace, then the grace of its own registry entries */
        after = add_sat(after, add_sat(bgli_svc_grace(s), bgli_svc_grace(s)));
        after = add_sat(after, bgli_svc_close_timeout(s));
    }
    uint64_t tasks = owner_task_wait(mgr, owner);
    if (timeout_ns >= 0) {
        if (timeouts > (uint64_t)timeout_ns)
            timeouts = (uint64_t)timeout_ns;
        tasks = (uint64_t)timeout_ns;
    }
    /* Owner stacks close side by side; for everything, the manager's after. */
    uint64_t close = owner_close_timeout(mgr, owner);
    if (!owner)
        close = add_sat(close, close);
    *bound_ns = add_sat(add_sat(timeouts, after), add_sat(tasks, close));
    return 0;
}

int bgl_services_abandoned(const bgl_services *mgr, const char *owner)
{
    if (!mgr || (owner && !*owner))
        return -EINVAL;
    int n = 0;
    for (size_t i = 0; i < mgr->n; i++)
        n += bgli_owner_matches(mgr->svcs[i], owner) && mgr->svcs[i]->abandoned;
    bgl_task_counts c;
    if (mgr->tasks && bgl_tasks_count(mgr->tasks, owner, &c) == 0)
        n += (int)c.abandoned;
    return n;
}

/* A stop covering `owner` (NULL: any) has not got past its tasks yet. */
static int stops_before_close(const bgl_services *mgr, const char *owner)
{
    for (size_t i = 0; i < mgr->n_ops; i++)
        if (mgr->ops[i]->phase < OP_CLOSE && bgli_owner_covers(mgr->ops[i]->owner, owner))
            return 1;
    return 0;
}

static void close_scopes(bgl_services *mgr)
{
    int owners_done = 1;
    for (size_t i = 0; i < mgr->n_owners; i++) {
        owner_scope *o = mgr->owners[i];
        if (o->close_pending && owner_idle(mgr, o->owner) && !stops_before_close(mgr, o->owner)) {
            o->close_pending = 0;
            bgl_resources_close(o->res, (int64_t)owner_close_timeout(mgr, o->owner));
        }
        owners_done &= !bgli_scope_pending(o);
    }
    if (mgr->close_pending && owners_done && owner_idle(mgr, NULL) &&
        !stops_before_close(mgr, NULL)) {
        mgr->close_pending = 0;
        bgl_resources_close(mgr->res, (int64_t)owner_close_timeout(mgr, NULL));
    }
}

int bgli_stops_awaited(const bgl_services *mgr, const char *owner)
{
    const bgl_tasks *reg = mgr->tasks;
    if (!reg)
        return 0;
    int n = 0;
    for (size_t i = 0; i < mgr->n_ops; i++) {
        const stop_op *op = mgr->ops[i];
        if (op->phase != OP_TASKS || !bgli_owner_covers(op->owner, owner))
            continue;
        if (!op->owner || owner)
            return bgli_tasks_live(reg, owner, NULL);
        /* Several owners' stops: count each owner once. */
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = mgr->ops[j]->phase == OP_TASKS && mgr->ops[j]->owner &&
                   strcmp(mgr->ops[j]->owner, op->owner) == 0;
        if (!seen)
            n += bgli_tasks_live(reg, op->owner, NULL);
    }
    return n;
}

static void advance_task_waits(bgl_services *mgr)
{
    for (size_t i = 0; i < mgr->n; i++) {
        bgl_service *s = mgr->svcs[i];
        if (!s->awaiting_tasks)
            continue;
        if (mgr->tasks)   /* entries created since, too */
            bgli_tasks_cancel(mgr->tasks, s->owner, s->name, 1);
        if (!mgr->tasks || bgli_tasks_live(mgr->tasks, s->owner, s->name) == 0)
            bgli_svc_close_run(s);
    }
}

static void advance_op(bgl_services *mgr, stop_op *op)
{
    if (op->phase == OP_SERVICES && owner_idle(mgr, op->owner)) {
        op->phase = OP_TASKS;
        if (!op->has_deadline)
            bgl_timer_start(op->timer, owner_task_wait(mgr, op->owner), 0);
    }
    if (op->phase == OP_TASKS) {
        if (mgr->tasks)
            bgli_tasks_cancel(mgr->tasks, op->owner, NULL, 1);
        if (mgr->tasks && op->deadline_passed)
            bgli_tasks_abandon(mgr->tasks, op->owner, NULL);
        if (!mgr->tasks || bgli_tasks_live(mgr->tasks, op->owner, NULL) == 0) {
            op->phase = OP_CLOSE;
            bgl_timer_stop(op->timer);
        }
    }
}

void bgli_stops_advance(bgl_services *mgr)
{
    advance_task_waits(mgr);
    /* By index: hooks called from here may add stops. */
    for (size_t i = 0; i < mgr->n_ops; i++)
        advance_op(mgr, mgr->ops[i]);
    close_scopes(mgr);
    for (size_t i = 0; i < mgr->n_ops; i++) {
        stop_op *op = mgr->ops[i];
        if (op->phase == OP_CLOSE && bgl_services_active(mgr, op->owner) == 0)
            op->phase = OP_DONE;
    }
    /* Each finished stop is taken out before its callback runs, so that the
     * callback may start another one (or the same again). */
    for (size_t i = 0; i < mgr->n_ops;) {
        stop_op *op = mgr->ops[i];
        if (op->phase != OP_DONE) {
            i++;
            continue;
        }
        memmove(&mgr->ops[i], &mgr->ops[i + 1], (mgr->n_ops - i - 1) * sizeof *mgr->ops);
        mgr->n_ops--;
        if (op->done)
            op->done(mgr, op->owner, op->userdata);
        op_free(op);
    }
}

int bgli_stops_pending_done(const bgl_services *mgr)
{
    for (size_t i = 0; i < mgr->n_ops; i++)
        if (mgr->ops[i]->done)
            return 1;
    return 0;
}

void bgli_stops_free(bgl_services *mgr)
{
    for (size_t i = 0; i < mgr->n_ops; i++)
        op_free(mgr->ops[i]);
    free(mgr->ops);
    mgr->ops = NULL;
    mgr->n_ops = 0;
}
