/* bgloop/service.h - services: dependencies, readiness, restart, stop.
 *
 * A service manager (bgl_services) runs on one bgl_loop and supervises named
 * services the way systemd and Erlang/OTP supervisors do.  The manager never
 * runs a service's work itself: it calls the service's hooks, and the host
 * (C code or the Python binding) reports back what happened.  Everything is
 * asynchronous and happens on the loop's thread.
 *
 * A SERVICE has a unique name, an owner (a string, e.g. an add-on's name),
 * dependencies by name, hooks (start, stop, cancel, destroy), a restart
 * policy and a stop timeout - see bgl_service_config.
 *
 * The manager is the one authority on service policy: states, stop
 * deadlines, cancelling and abandoning, the tasks a service leaves behind
 * (with a task registry, bgl_services_set_tasks()), "failed for good", what
 * may be removed, and when the process may exit.  A host only supplies the
 * hooks (start the work, ask it to stop, cancel it, close a resource) and
 * reports back.
 *
 * STATES
 *
 *   BGL_SERVICE_STOPPED   not running (initial).  A service that is wanted but
 *                         waits for a dependency is also STOPPED (see
 *                         bgl_service_info.waiting_for).
 *   BGL_SERVICE_STARTING  the start hook was called; not ready yet.
 *   BGL_SERVICE_RUNNING   the host reported readiness (bgl_service_ready()).
 *   BGL_SERVICE_STOPPING  a stop was requested and the service has not ended
 *                         yet, or it ended and its registry entries are
 *                         winding up or its resources are closing.
 *   BGL_SERVICE_EXITED    it finished on its own, successfully.
 *   BGL_SERVICE_FAILED    it finished with a failure, its start hook failed,
 *                         the start limit was hit, or its stop timed out.
 *
 * TRANSITIONS (callbacks: bgl_services_set_state_cb())
 *
 *   stopped|exited|failed -> starting   wanted, every dependency RUNNING, no
 *                                       restart delay pending, start limit
 *                                       not hit: the start hook is called
 *   stopped|exited|failed -> failed     the start limit was hit instead
 *   starting -> running                 bgl_service_ready()
 *   starting|running -> stopping        a stop was requested (no longer
 *                                       wanted, or a dependency went down);
 *                                       the stop hook is called
 *   starting|running|stopping -> exited|failed|stopped
 *                                       bgl_service_exited(); also the start
 *                                       hook returning an error (failed)
 *
 * When a service ends, however it ends, its tasks are wound up and its
 * resource stack is closed (see TASKS and resource.h); the state is
 * STOPPING until that completed, then:
 *   - it was asked to stop:   STOPPED, or FAILED if it reported a failure or
 *                             its stop timed out;
 *   - it ended on its own:    EXITED (success) or FAILED.
 *
 * DEPENDENCIES (systemd Requires= + After=)
 *
 * A service starts only when every dependency is RUNNING (readiness gating).
 * Starting a service also starts its dependencies, whatever their owner.
 * When a dependency leaves RUNNING for any reason (stop, exit, failure), its
 * dependents are stopped - dependents first, in reverse dependency order -
 * and stay wanted: they start again when the dependency is running again.
 * Stopping a service stops the services that depend on it first.  Unknown
 * dependencies and cycles are refused by bgl_services_start() /
 * bgl_service_start(), which then start nothing; bgl_services_last_error()
 * names the services involved.
 *
 * Dependencies are resolved to the services once, when services are added
 * or removed and before a start; every check and walk of the graph visits
 * each service at most once, so large and dense graphs (diamonds of many
 * layers) cost time linear in their edges.
 *
 * RESTART POLICY (for a service that ended on its own while wanted)
 *
 *   BGL_RESTART_NO          never restart;
 *   BGL_RESTART_ON_FAILURE  restart after FAILED;
 *   BGL_RESTART_ALWAYS      restart after EXITED or FAILED.
 *
 * The n-th consecutive automatic restart waits restart_delay_ns * 2^(n-1),
 * at most restart_delay_max_ns (exponential backoff).  The consecutive count
 * is reset by an explicit start and after a run that stayed RUNNING for at
 * least restart_delay_max_ns.  Every start (explicit or automatic) is counted:
 * if start_limit_burst starts already happened within the last
 * start_limit_interval_ns, the service goes to FAILED ("start limit hit") and
 * is no longer wanted.  An explicit start clears that history.  A service
 * that is not restarted is no longer wanted.
 *
 * STOP
 *
 * A stop calls the stop hook (a graceful request) and arms the stop timeout.
 * If the service has not ended when it expires, the manager marks it ("stop
 * timed out after N s, cancelled"), calls the cancel hook and waits one more
 * stop timeout; if it still has not ended it is abandoned ("... did not
 * exit, abandoned"): treated as ended, FAILED, resources closed.  A stop
 * therefore never hangs forever.  Without a cancel hook the service is
 * abandoned at the first expiry.
 *
 * A stop timeout of 0 means "cancel at once": the stop hook and then the
 * cancel hook are called in the same pass, and the cancellation is the stop
 * itself - whatever the work then reports, it ends STOPPED, not FAILED.
 * Waiting for it to end is still bounded, by a grace of 1 s (the least wait
 * before abandoning anything that was cancelled): it is abandoned (FAILED)
 * if it has not ended by then; without a cancel hook, the stop hook alone
 * gets that grace.
 *
 * OWNER STOPS (bgl_services_stop_full())
 *
 *   1. the owner's services stop as above (dependents first, also those of
 *      other owners).  With a deadline (timeout_ns >= 0), the owner's
 *      services that have not ended when it passes are treated exactly as
 *      if their own stop timeout had expired then: marked stop timed out,
 *      cancel hook called (abandoned at once without one), abandoned one
 *      stop timeout later; one whose stop has not begun yet (it waits for a
 *      dependent) is cancelled as soon as its stop begins; one that already
 *      ended and winds up its own registry entries keeps its own grace.
 *   2. once they are down, the owner's remaining active registry entries
 *      (owner match, any name; NULL: every entry) are cancelled
 *      (bgl_task_cancel(), also entries that appear meanwhile) and awaited
 *      until they finish or a deadline passes: the caller's deadline (at
 *      once if it has passed already), else the longest stop timeout among
 *      the owner's services (at least 1 s) from now.  Entries still active
 *      then are abandoned (bgl_task_abandon(), see task.h): no longer
 *      awaited, not counted by bgl_services_active(), "nothing left" or the
 *      keep-alive - a task that swallows cancellation cannot keep a process
 *      up forever.
 *   3. the owner's resource stack closes (for NULL: every owner's, then the
 *      manager's);
 *   4. the `done` callback, if any, is called exactly once, from the loop
 *      (never from inside bgl_services_stop_full()), once
 *      bgl_services_active(mgr, owner) is 0.  Several stops may be in
 *      progress at once; each gets its own call.
 *
 * TASKS (with a registry attached by bgl_services_set_tasks())
 *
 * Registry entries belong to a service when their owner and name are the
 * service's.  When a run ends (bgl_service_exited(), a failed start hook,
 * or abandonment), before its resource stack is closed, the manager cancels
 * the service's active entries (bgl_task_cancel()) and keeps the service
 * STOPPING until they finished or a grace passed: its stop timeout (1 s if
 * that is 0).  Then it stops waiting, abandons the entries still active and
 * reports how many in bgl_service_info.tasks_abandoned; the end state is
 * not changed by that.
 *
 * STARTING AND STOPPING are requests: bgl_services_start() and friends mark
 * services as wanted (or not) and return at once; hooks are called from the
 * loop, in a later iteration.  Repeated start or stop requests are harmless.
 *
 * "NOTHING LEFT", FAILED FOR GOOD AND EXIT CODE
 *
 * A service is *active* while it is starting, running or stopping (its
 * tasks and resources winding up included), has a restart delay pending,
 * is closing its resource stack, or is wanted and waits for dependencies
 * that are themselves active.  A service is *failed for good* when it is
 * FAILED and not active: no restart is pending and nothing it waits for is
 * coming (bgl_service_info.failed_for_good, bgl_services_list_failed()).
 * bgl_services_nothing_left() is true when no service is active, no
 * resource stack is about to be or being closed by a stop, and the attached
 * registry has no active entry that is not abandoned.
 * bgl_services_exit_code() is 1 if a service failed for good, else 0.
 * bgl_services_set_keepalive() turns that into the exit of bgl_loop_run().
 *
 * IN USE: a service is in use while it is wanted, active, or its resource
 * stack is not empty; bgl_service_remove() and bgl_services_remove() refuse
 * services in use (-EBUSY, with a text naming them).
 *
 * REENTRANCY: hooks and callbacks (state callback, stop done callbacks, the
 * cancel hooks of registry entries called by the manager) may call any
 * function here except bgl_service_remove(), bgl_services_remove() and
 * bgl_services_free() (-EBUSY).  The state callback may even report the end
 * of the service it is told about; the manager then skips the start or stop
 * hook it was about to call.
 *
 * LIFETIME: the manager's timers live on its loop - free the manager before
 * the loop.  A task registry given to bgl_services_set_tasks() may be freed
 * first; the manager then stops counting and waiting for its entries.
 *
 * ERRORS: -EINVAL (NULL, empty name/owner, bad config value), -EEXIST (a
 * service with that name exists), -ENOENT (unknown service; unknown
 * dependency at start), -ELOOP (dependency cycle at start), -ESRCH (the
 * service is not in a state where that report makes sense), -EBUSY (see
 * REENTRANCY; remove/free of something in use), -ENOMEM.  Refusals of
 * bgl_service_add(), start and removal leave a text in
 * bgl_services_last_error().
 */
#ifndef BGLOOP_SERVICE_H
#define BGLOOP_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include "bgloop/common.h"
#include "bgloop/loop.h"
#include "bgloop/resource.h"
#include "bgloop/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_services bgl_services;
typedef struct bgl_service bgl_service;

typedef enum bgl_service_state {
    BGL_SERVICE_STOPPED = 0,
    BGL_SERVICE_STARTING,
    BGL_SERVICE_RUNNING,
    BGL_SERVICE_STOPPING,
    BGL_SERVICE_EXITED,
    BGL_SERVICE_FAILED,
} bgl_service_state;

typedef enum bgl_restart_policy {
    BGL_RESTART_NO = 0,
    BGL_RESTART_ON_FAILURE,
    BGL_RESTART_ALWAYS,
} bgl_restart_policy;

/* Hooks.  userdata is the pointer given to bgl_service_add(). */
typedef struct bgl_service_hooks {
    /* Launch the work and return; report readiness with bgl_service_ready()
     * and the end with bgl_service_exited(), now or later.  A negative
     * return means the launch failed: the service ends as FAILED.
     * Required. */
    int (*start)(bgl_service *svc, void *userdata);
    /* Ask the work to end gracefully (Python: set ctx.stopping).  May be
     * NULL: nothing to ask, the manager just waits for the end. */
    void (*stop)(bgl_service *svc, void *userdata);
    /* The stop timeout expired: interrupt the work now (Python: cancel the
     * task); it must still report bgl_service_exited().  May be NULL. */
    void (*cancel)(bgl_service *svc, void *userdata);
    /* The service is being freed (bgl_service_remove(), bgl_services_free()):
     * release userdata.  May be NULL. */
    void (*destroy)(void *userdata);
} bgl_service_hooks;

/* close_timeout_ns default: max(stop_timeout_ns, 1 s). */
#define BGL_CLOSE_TIMEOUT_AUTO UINT64_MAX

/* The largest start_limit_burst: the manager keeps the time of each of the
 * last start_limit_burst starts. */
#define BGL_START_LIMIT_BURST_MAX 10000u

typedef struct bgl_service_config {
    const char *name;                /* unique, non-empty; copied */
    const char *owner;               /* non-empty; copied */
    const char *const *depends_on;   /* NULL-terminated names, or NULL */
    bgl_restart_policy restart;      /* default BGL_RESTART_NO */
    uint64_t stop_timeout_ns;        /* default 5 s; 0 = cancel at once (see
                                        STOP); at most INT64_MAX */
    uint64_t close_timeout_ns;       /* bound of its resource close; default
                                        BGL_CLOSE_TIMEOUT_AUTO; 0 = do not
                                        wait for asynchronous closes; else
                                        at most INT64_MAX */
    uint64_t restart_delay_ns;       /* first restart delay, default 100 ms */
    uint64_t restart_delay_max_ns;   /* backoff cap, default 30 s; >= delay */
    unsigned start_limit_burst;      /* default 5; 0 = no start limit; at
                                        most BGL_START_LIMIT_BURST_MAX */
    uint64_t start_limit_interval_ns;/* default 10 s */
} bgl_service_config;

/* What bgl_service_get_info() reports.  Strings are owned by the service and
 * valid until its next state change (error, waiting_for) or its removal. */
typedef struct bgl_service_info {
    const char *name;
    const char *owner;
    bgl_service_state state;
    unsigned restarts;        /* automatic restarts so far */
    const char *error;        /* text of the last failure, or NULL */
    uint64_t changed_ns;      /* bgl_loop_now() of the last state change */
    int wanted;               /* 1 if it should be up */
    int restart_pending;      /* 1 while a restart delay runs */
    uint64_t restart_at_ns;   /* when it ends (valid if restart_pending) */
    int stop_timed_out;       /* 1 if its last stop did not end it in time
                                 (its stop timeout or a stop's deadline
                                 expired); not for the planned cancel of a
                                 stop timeout of 0 */
    const char *waiting_for;  /* wanted but held back: the first dependency
                                 that is not running; else NULL */
    int failed_for_good;      /* 1 if FAILED and not active (see "NOTHING
                                 LEFT"): what bgl_services_exit_code() counts */
    unsigned tasks_abandoned; /* registry entries abandoned when its last
                                 run ended (see TASKS) */
    int abandoned;            /* 1 if its last stop gave up on it: the stop
                                 timed out and the cancel did not end it
                                 either (or there was no cancel hook) */
} bgl_service_info;

typedef void (*bgl_service_state_cb)(bgl_service *svc, bgl_service_state old_state,
                                     bgl_service_state new_state, void *userdata);

/* A stop of `owner` (NULL: everything) completed, see OWNER STOPS. */
typedef void (*bgl_services_stopped_fn)(bgl_services *mgr, const char *owner, void *userdata);

/* ---- the manager --------------------------------------------------------- */

/* Create a manager on `loop`.  0 and *out, -EINVAL, -ENOMEM. */
BGL_EXPORT int bgl_services_new(bgl_loop *loop, bgl_services **out);

/* Free the manager, every service (destroy hooks are called, in
 * registration order; the manager they see has no services left) and the
 * owner and manager resource stacks.  0; -EINVAL; -EBUSY from a hook or
 * callback, while a service is starting, running or stopping, a resource
 * stack is not empty, or a stop with a done callback has not completed
 * (stop and close first; the manager is left untouched).  Stops without a
 * done callback still in progress are dropped. */
BGL_EXPORT int bgl_services_free(bgl_services *mgr);

/* The callback called on every state change (also when only the error text
 * changed).  NULL removes it.  0 or -EINVAL. */
BGL_EXPORT int bgl_services_set_state_cb(bgl_services *mgr, bgl_service_state_cb cb,
                                         void *userdata);

/* Text naming what went wrong in the last failed call on this manager that
 * has more to say than an errno: every refusal of bgl_service_add() (e.g.
 * "service 'web': restart_delay_max (1 s) is below restart_delay (2 s)",
 * "service 'web': depends on itself", "a service named 'web' is already
 * registered"), unknown dependency or cycle at start ("dependency cycle: a
 * -> b -> a"), removal of services in use.  "" if none; NULL if mgr is
 * NULL.  Valid until the next call on the manager. */
BGL_EXPORT const char *bgl_services_last_error(const bgl_services *mgr);

/* Store up to `cap` services of `owner` (NULL: all), in registration order.
 * Returns how many match (may exceed cap), or -EINVAL. */
BGL_EXPORT int bgl_services_list(const bgl_services *mgr, const char *owner, bgl_service **out,
                                 size_t cap);

/* As bgl_services_list() for the services that failed for good (see
 * "NOTHING LEFT"), all owners. */
BGL_EXPORT int bgl_services_list_failed(const bgl_services *mgr, bgl_service **out, size_t cap);

/* 0 and *out, -EINVAL, -ENOENT. */
BGL_EXPORT int bgl_services_find(const bgl_services *mgr, const char *name, bgl_service **out);

/* Want every service of `owner` (NULL: all) up, with its dependencies.
 * 0; -ENOENT (unknown dependency) or -ELOOP (cycle), nothing started, see
 * bgl_services_last_error(); -EINVAL (also an empty owner); -ENOMEM.
 * Starting an owner without services is 0. */
BGL_EXPORT int bgl_services_start(bgl_services *mgr, const char *owner);

/* Stop every service of `owner` (NULL: all), dependents first - services of
 * other owners that depend on them stop too (and come back once their
 * dependency is started again) - cancel pending restarts, wind up the
 * owner's registry entries, and close the owner's resource stack (NULL:
 * every owner's, then the manager's): see OWNER STOPS.  timeout_ns >= 0 is
 * a deadline from now; < 0 leaves each service its own stop timeout.  done
 * (may be NULL) is then called once from the loop.  Repeated and
 * overlapping stops are fine.  0; -EINVAL (NULL mgr, empty owner); -ENOMEM
 * (nothing changed). */
BGL_EXPORT int bgl_services_stop_full(bgl_services *mgr, const char *owner, int64_t timeout_ns,
                                      bgl_services_stopped_fn done, void *userdata);

/* bgl_services_stop_full(mgr, owner, -1, NULL, NULL). */
BGL_EXPORT int bgl_services_stop(bgl_services *mgr, const char *owner);

/* The number of active services of `owner` (NULL: all) - see "NOTHING
 * LEFT" - plus 1 per resource stack a stop is about to close or closing,
 * plus the registry entries of `owner` a stop is awaiting (OWNER STOPS,
 * step 2).  >= 0 or -EINVAL. */
BGL_EXPORT int bgl_services_active(const bgl_services *mgr, const char *owner);

/* The longest a stop of `owner` (NULL: all) started now with `timeout_ns`
 * (as for bgl_services_stop_full()) can take until its done callback,
 * whatever the services do, as long as the loop keeps dispatching: for every
 * service that may have to stop, one after the other, its stop timeout (at
 * most the deadline, counted once), its cancel grace, the wait for its
 * registry entries and its resource close; then the wait for the owner's
 * leftover entries and the close of its resource stacks.  Callbacks that
 * block delay the timers by as long as they block.  0 and *bound_ns;
 * -EINVAL. */
BGL_EXPORT int bgl_services_stop_bound(const bgl_services *mgr, const char *owner,
                                       int64_t timeout_ns, uint64_t *bound_ns);

/* What stops gave up on, for `owner` (NULL: all): the services whose last
 * stop abandoned them (bgl_service_info.abandoned) plus the attached
 * registry's entries of `owner` that were abandoned and are still active
 * (an abandoned service's own entry counts in both).  >= 0 or -EINVAL. */
BGL_EXPORT int bgl_services_abandoned(const bgl_services *mgr, const char *owner);

/* 1 if a service failed for good, 0 if not, -EINVAL. */
BGL_EXPORT int bgl_services_exit_code(const bgl_services *mgr);

/* 1 if nothing is left (see "NOTHING LEFT"; the registry attached with
 * bgl_services_set_tasks() counted), else 0; -EINVAL. */
BGL_EXPORT int bgl_services_nothing_left(const bgl_services *mgr);

/* 1 if at least one service is wanted and every wanted service is RUNNING
 * (none of them ending): what READY=1 (notify.h) and a readiness probe
 * report; else 0 - also while a stop of everything is in progress, since
 * nothing is wanted then; -EINVAL. */
BGL_EXPORT int bgl_services_ready(const bgl_services *mgr);

/* Attach the task registry whose entries the manager cancels, awaits and
 * counts (see TASKS, OWNER STOPS, "NOTHING LEFT"); NULL detaches.  Several
 * managers may share one registry.  A registry freed while attached is
 * detached by that.  0, -EINVAL, or -ENOMEM (nothing changed). */
BGL_EXPORT int bgl_services_set_tasks(bgl_services *mgr, bgl_tasks *tasks);

/* Keep-alive: while enabled, the manager holds the loop (bgl_loop_hold())
 * while something is left, and once nothing is left (checked after each
 * change, and once soon after enabling - from the loop, so a start
 * requested right after enabling counts) it calls bgl_loop_stop(loop,
 * bgl_services_exit_code(mgr)) - so bgl_loop_run() returns that code when
 * the services ended or a bgl_services_stop(mgr, NULL) (say, from a SIGTERM
 * source) completed, and 0 at once for a manager with nothing to do.  0 or
 * -EINVAL. */
BGL_EXPORT int bgl_services_set_keepalive(bgl_services *mgr, int enable);

/* The manager's own resource stack ("per loop"), closed by a stop of
 * everything.  NULL if mgr is NULL. */
BGL_EXPORT bgl_resources *bgl_services_loop_resources(bgl_services *mgr);

/* The resource stack of `owner`, created on first use.  0 and *out,
 * -EINVAL, -ENOMEM. */
BGL_EXPORT int bgl_services_owner_resources(bgl_services *mgr, const char *owner,
                                            bgl_resources **out);

/* ---- services ------------------------------------------------------------- */

/* Fill *cfg with the defaults (name, owner, depends_on NULL). */
BGL_EXPORT void bgl_service_config_init(bgl_service_config *cfg);

/* Register a service (STOPPED, not wanted).  Dependencies may be
 * registered later (they must exist at start).  0 and *out (out may be
 * NULL); -EINVAL (NULL cfg/hooks/start hook, empty name/owner, empty
 * dependency name, a service depending on itself, stop_timeout_ns or
 * close_timeout_ns above INT64_MAX (except BGL_CLOSE_TIMEOUT_AUTO), restart
 * delay above its cap, a start limit burst with start_limit_interval_ns 0,
 * unknown policy); -EEXIST (name taken); -ENOMEM.  Every refusal (but a
 * NULL mgr) leaves a text naming the service and the field in
 * bgl_services_last_error().  On failure the destroy hook is not called. */
BGL_EXPORT int bgl_service_add(bgl_services *mgr, const bgl_service_config *cfg,
                               const bgl_service_hooks *hooks, void *userdata,
                               bgl_service **out);

/* Unregister and free a service that is not in use (see IN USE); its
 * destroy hook is called.  Services depending on it see it as unknown until
 * one of that name is added again.  0; -EINVAL; -EBUSY (in use, or called
 * from a hook; bgl_services_last_error() says "service 'x' is still active
 * or wanted; stop it first"). */
BGL_EXPORT int bgl_service_remove(bgl_service *svc);

/* Remove every service of `owner` (NULL: all), all or nothing: -EBUSY if
 * any of them is in use, with bgl_services_last_error() = "still active or
 * wanted: a, b" (registration order), and nothing removed.  Otherwise their
 * destroy hooks are called in registration order and the number removed is
 * returned (>= 0).  -EINVAL (NULL mgr, empty owner); -EBUSY from a hook. */
BGL_EXPORT int bgl_services_remove(bgl_services *mgr, const char *owner);

/* As bgl_services_start() / bgl_services_stop() for one service (starting
 * pulls in its dependencies; stopping stops its dependents first).  Same
 * returns. */
BGL_EXPORT int bgl_service_start(bgl_service *svc);
BGL_EXPORT int bgl_service_stop(bgl_service *svc);

/* Report readiness: STARTING -> RUNNING; dependents may start.  0;
 * -EALREADY if already running; -ESRCH in any other state (e.g. a stop was
 * requested meanwhile - the host may ignore that); -EINVAL. */
BGL_EXPORT int bgl_service_ready(bgl_service *svc);

/* Report that the work ended: failed is 0 for success, else error (may be
 * NULL) says why.  Valid in STARTING, RUNNING and STOPPING (not after the
 * service was abandoned); see STATES for the resulting state.  0; -ESRCH
 * otherwise; -EINVAL. */
BGL_EXPORT int bgl_service_exited(bgl_service *svc, int failed, const char *error);

/* Fill *info.  0 or -EINVAL. */
BGL_EXPORT int bgl_service_get_info(const bgl_service *svc, bgl_service_info *info);

/* The state (>= 0) or -EINVAL. */
BGL_EXPORT int bgl_service_get_state(const bgl_service *svc);

/* Accessors; NULL if svc is NULL.  bgl_service_error() is NULL when there is
 * no error text. */
BGL_EXPORT const char *bgl_service_name(const bgl_service *svc);
BGL_EXPORT const char *bgl_service_owner(const bgl_service *svc);
BGL_EXPORT const char *bgl_service_error(const bgl_service *svc);
BGL_EXPORT void *bgl_service_userdata(const bgl_service *svc);
BGL_EXPORT bgl_services *bgl_service_manager(const bgl_service *svc);

/* The service's resource stack, closed whenever the service ends. */
BGL_EXPORT bgl_resources *bgl_service_resources(bgl_service *svc);

/* "stopped", "starting", "running", "stopping", "exited", "failed";
 * "unknown" otherwise. */
BGL_EXPORT const char *bgl_service_state_name(int state);
/* "no", "on-failure", "always"; "unknown" otherwise. */
BGL_EXPORT const char *bgl_restart_policy_name(int policy);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_SERVICE_H */
