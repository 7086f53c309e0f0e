/* service-run.c - the state machine: the reconcile pass that starts and
 * stops services, readiness and end reports, the end of a run (its tasks,
 * then its resources) and the keep-alive.
 *
 * API calls only record what is wanted and schedule a reconcile pass (a
 * zero-delay timer), so start and stop hooks are always called from the
 * loop, never from inside the caller's own call. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service-internal.h"

uint64_t bgli_svc_now(const bgl_services *mgr)
{
    uint64_t now = 0;
    bgl_loop_now(mgr->loop, &now);
    return now;
}

static void reconcile(bgl_services *mgr);

static void on_reconcile(bgl_timer *timer, void *userdata)
{
    (void)timer;
    reconcile(userdata);
}

int bgli_svc_schedule_init(bgl_services *mgr)
{
    return bgl_timer_new(mgr->loop, on_reconcile, mgr, &mgr->reconcile_timer);
}

void bgli_svc_schedule(bgl_services *mgr)
{
    if (bgl_timer_is_active(mgr->reconcile_timer) != 1)
        bgl_timer_start(mgr->reconcile_timer, 0, 0);
}

void bgli_svc_set_error(bgl_service *s, char *text)
{
    free(s->error);
    s->error = text;
}

void bgli_svc_notify(bgl_service *s, bgl_service_state old_state)
{
    bgl_services *mgr = s->mgr;
    if (mgr->state_cb) {
        mgr->depth++;
        mgr->state_cb(s, old_state, s->state, mgr->state_ud);
        mgr->depth--;
    }
    if (mgr->observer)
        mgr->observer->changed(mgr->observer_ud);
}

void bgli_svc_set_state(bgl_service *s, bgl_service_state st)
{
    bgl_service_state old = s->state;
    s->state = st;
    s->changed_ns = bgli_svc_now(s->mgr);
    if (st == BGL_SERVICE_RUNNING)
        s->running_since_ns = s->changed_ns;
    bgli_svc_refresh(s);
    bgli_svc_notify(s, old);
    bgli_svc_schedule(s->mgr);
}

void bgli_svc_set_want(bgl_service *s, int want)
{
    s->want = want;
    bgli_svc_refresh(s);
}

uint64_t bgli_svc_grace(const bgl_service *s)
{
    return s->cfg.stop_timeout_ns ? s->cfg.stop_timeout_ns : BGLI_MIN_GRACE_NS;
}

uint64_t bgli_svc_close_timeout(const bgl_service *s)
{
    if (s->cfg.close_timeout_ns != BGL_CLOSE_TIMEOUT_AUTO)
        return s->cfg.close_timeout_ns;
    return s->cfg.stop_timeout_ns > BGLI_MIN_GRACE_NS ? s->cfg.stop_timeout_ns : BGLI_MIN_GRACE_NS;
}

int bgli_owner_matches(const bgl_service *s, const char *owner)
{
    return !owner || strcmp(s->owner, owner) == 0;
}

/* ---- the end of a run ------------------------------------------------------ */

void bgli_svc_close_run(bgl_service *s)
{
    s->awaiting_tasks = 0;
    bgl_timer_stop(s->stop_timer);
    bgl_resources_close(s->res, (int64_t)bgli_svc_close_timeout(s));
    /* Still closing: show that it is winding down. */
    if (s->ending && s->state != BGL_SERVICE_STOPPING)
        bgli_svc_set_state(s, BGL_SERVICE_STOPPING);
    bgli_svc_schedule(s->mgr);
}

void bgli_svc_end(bgl_service *s, bgl_service_state st, char *error)
{
    bgl_services *mgr = s->mgr;
    bgl_timer_stop(s->stop_timer);
    s->stable = s->state == BGL_SERVICE_RUNNING &&
                bgli_svc_now(mgr) - s->running_since_ns >= s->cfg.restart_delay_max_ns;
    s->ending = 1;
    s->end_state = st;
    free(s->end_error);
    s->end_error = error;
    s->tasks_abandoned = 0;
    bgli_svc_refresh(s);
    /* What the run started ends with it, before its resources close (they
     * may still be in use by those tasks). */
    if (mgr->tasks && bgli_tasks_live(mgr->tasks, s->owner, s->name) > 0) {
        s->awaiting_tasks = 1;
        mgr->depth++;
        bgli_tasks_cancel(mgr->tasks, s->owner, s->name, 0);
        mgr->depth--;
        if (mgr->tasks && bgli_tasks_live(mgr->tasks, s->owner, s->name) > 0) {
            bgl_timer_start(s->stop_timer, bgli_svc_grace(s), 0);
            if (s->state != BGL_SERVICE_STOPPING)
                bgli_svc_set_state(s, BGL_SERVICE_STOPPING);
            bgli_svc_schedule(mgr);
            return;
        }
    }
    bgli_svc_close_run(s);
}

static void on_resources_closed(bgl_resources *rs, void *ud)
{
    (void)rs;
    bgl_service *s = ud;
    /* Only the close that ends a run settles it; any other (what was
     * pushed while it was down) may be what a stop is waiting for. */
    if (!s->ending || s->awaiting_tasks) {
        bgli_svc_schedule(s->mgr);
        return;
    }
    s->ending = 0;
    if (s->end_error) {
        bgli_svc_set_error(s, s->end_error);
        s->end_error = NULL;
    }
    bgli_svc_set_state(s, s->end_state);
    if (!s->stop_requested)
        bgli_svc_after_end(s);
}

/* A push to a service that is not running: reconcile closes it. */
static void on_resource_pushed(bgl_resources *rs, void *ud)
{
    (void)rs;
    bgl_service *s = ud;
    if (!s->want && !bgli_svc_is_busy(s))
        bgli_svc_schedule(s->mgr);
}

int bgli_svc_init_run(bgl_service *s)
{
    bgl_loop *loop = s->mgr->loop;
    int r;
    if ((r = bgl_timer_new(loop, bgli_svc_stop_timeout, s, &s->stop_timer)) < 0 ||
        (r = bgl_timer_new(loop, bgli_svc_restart_fired, s, &s->restart_timer)) < 0 ||
        (r = bgli_resources_new_owned(loop, on_resources_closed, on_resource_pushed, s,
                                      &s->res)) < 0)
        return r;
    return 0;
}

/* ---- starting -------------------------------------------------------------- */

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void do_start(bgl_service *s)
{
    uint64_t now = bgli_svc_now(s->mgr);
    if (bgli_svc_start_limit_hit(s, now)) {
        bgli_svc_set_want(s, 0);
        bgli_svc_set_error(s, bgli_strdupf("start limit hit: %u starts within %g s",
                                           s->cfg.start_limit_burst,
                                           secs(s->cfg.start_limit_interval_ns)));
        bgli_svc_set_state(s, BGL_SERVICE_FAILED);
        return;
    }
    bgli_svc_record_start(s, now);
    s->stop_requested = 0;
    s->cancelled = 0;
    s->cancel_is_stop = 0;
    s->force_cancel = 0;
    bgli_svc_set_state(s, BGL_SERVICE_STARTING);
    if (s->state != BGL_SERVICE_STARTING || s->ending)
        return;   /* ended from the state callback: nothing to launch */
    int r = s->hooks.start(s, s->userdata);
    /* The hook may have reported the end itself already. */
    if (r < 0 && s->state == BGL_SERVICE_STARTING && !s->ending)
        bgli_svc_end(s, BGL_SERVICE_FAILED,
                     bgli_strdupf("start hook failed: %s", bgl_strerror(r)));
}

/* ---- "nothing left" and keep-alive ------------------------------------------ */

int bgli_any_active(const bgl_services *mgr)
{
    if (mgr->close_pending || bgl_resources_is_closing(mgr->res) > 0)
        return 1;
    for (size_t i = 0; i < mgr->n_owners; i++)
        if (bgli_scope_pending(mgr->owners[i]))
            return 1;
    bgli_walk_begin(mgr);
    for (size_t i = 0; i < mgr->n; i++)
        if (bgli_svc_is_active(mgr->svcs[i]))
            return 1;
    return 0;
}

static void keepalive_check(bgl_services *mgr)
{
    if (!mgr->keepalive)
        return;
    int fresh = mgr->keepalive_fresh;
    mgr->keepalive_fresh = 0;
    int left = !bgl_services_nothing_left(mgr);
    if (left && !mgr->holding) {
        mgr->holding = bgl_loop_hold(mgr->loop) == 0;
    } else if (!left && (mgr->holding || fresh)) {
        if (mgr->holding)
            bgl_loop_release(mgr->loop);
        mgr->holding = 0;
        bgl_loop_stop(mgr->loop, bgl_services_exit_code(mgr));
    }
}

/* ---- the reconcile pass ------------------------------------------------------ */

static void reconcile(bgl_services *mgr)
{
    mgr->depth++;
    bgli_deps_resolve(mgr);
    /* Repeat while something changed: a hook that reports readiness or its
     * end at once lets the next service go in the same pass.  Bounded: each
     * pass that changes something moves a service forward. */
    for (size_t pass = 0; pass <= 2 * mgr->n + 1; pass++) {
        int changed = 0;
        for (size_t i = 0; i < mgr->n; i++) {
            bgl_service *s = mgr->svcs[i];
            if (bgli_svc_is_up(s)) {
                if (bgli_svc_should_be_down(s) && !bgli_svc_has_busy_dependents(s)) {
                    bgli_svc_begin_stop(s);
                    changed = 1;
                }
            } else if (bgli_svc_can_start(s)) {
                do_start(s);
                changed = 1;
            } else if (!s->want && !bgli_svc_is_busy(s) && bgl_resources_count(s->res) > 0) {
                /* Pushed while it was not running: its scope is over. */
                bgl_resources_close(s->res, (int64_t)bgli_svc_close_timeout(s));
            }
        }
        if (!changed)
            break;
    }
    bgli_stops_advance(mgr);
    mgr->depth--;
    keepalive_check(mgr);
}

/* ---- reports ------------------------------------------------------------------ */

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
    bgli_svc_set_state(svc, BGL_SERVICE_RUNNING);
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
        text = bgli_strdupf("stop timed out after %g s, cancelled", secs(svc->expired_ns));
    } else if (svc->stop_requested && svc->cancel_is_stop) {
        st = BGL_SERVICE_STOPPED;   /* stop timeout 0: the cancel was the stop */
    } else if (failed) {
        st = BGL_SERVICE_FAILED;
        text = strdup(why);
    } else {
        st = svc->stop_requested ? BGL_SERVICE_STOPPED : BGL_SERVICE_EXITED;
    }
    svc->mgr->depth++;
    bgli_svc_end(svc, st, text);
    svc->mgr->depth--;
    return 0;
}
