/* service-internal.h - the service manager's data, shared by service.c (API,
 * registration, queries), service-run.c (state machine and reconcile pass),
 * service-stop.c (stops, deadlines, cancel and abandon, task waits, scope
 * closing), service-deps.c (dependency graph) and service-restart.c (restart
 * policy, backoff, start limit).  Not installed. */
#ifndef BGLOOP_SERVICE_INTERNAL_H
#define BGLOOP_SERVICE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bgloop/service.h"
#include "lifecycle-internal.h"

#define BGLI_DEFAULT_TIMEOUT_NS 5000000000ull
/* The least wait before abandoning something that was cancelled, so a stop
 * timeout of 0 ("cancel at once") does not also mean "abandon at once". */
#define BGLI_MIN_GRACE_NS 1000000000ull

struct bgl_service {
    bgl_services *mgr;
    char *name, *owner;
    char **dep_names;             /* as configured; one allocation with
                                     the strings */
    bgl_service **deps;           /* resolved; NULL while unknown */
    size_t n_deps;
    bgl_service **rdeps;          /* dependents, one entry per edge */
    size_t n_rdeps, cap_rdeps;
    size_t n_bad_deps;            /* deps that are unknown or not ok */
    int ok;                       /* running, wanted, every dep ok: what a
                                     dependent may start on */
    int queued;                   /* on the refresh work list */
    size_t n_unres;               /* deps still NULL */
    bgl_service_config cfg;       /* name/owner/depends_on unused */
    bgl_service_hooks hooks;
    void *userdata;

    bgl_service_state state;
    int want;                     /* should be up */
    int stop_requested;           /* the current run was asked to stop */
    int stop_timed_out;           /* ... and did not end in time */
    int cancelled;                /* the cancel hook was called */
    int cancel_is_stop;           /* ... as the stop itself (timeout 0) */
    int abandoned;                /* the last stop gave up on it */
    int force_cancel;             /* an owner stop's deadline passed before
                                     its own stop began */
    uint64_t force_ns;            /* ... that stop's timeout */
    uint64_t expired_ns;          /* the timeout that expired, for texts */
    int ending;                   /* ended; tasks or resources closing */
    int awaiting_tasks;           /* ended; its registry entries winding up */
    unsigned tasks_abandoned;     /* entries abandoned when its last run ended */
    int stable;                   /* the run that ended was long enough to
                                     reset the backoff */
    bgl_service_state end_state;  /* state once resources are closed */
    char *end_error;
    char *error;                  /* last failure text */
    uint64_t changed_ns, running_since_ns;

    int restart_pending;
    uint64_t restart_at_ns;
    unsigned restarts;            /* automatic restarts, total */
    unsigned consecutive;         /* automatic restarts since reset */
    uint64_t *starts;             /* ring of the last start times */
    size_t n_starts, starts_pos;

    bgl_timer *stop_timer, *restart_timer;
    bgl_resources *res;
    uint64_t walk_gen;            /* graph walks: memo of the walk with */
    int walk_val;                 /* this generation */
};

typedef struct owner_scope {
    char *owner;
    bgl_resources *res;
    int close_pending;            /* a stop will close it once the owner's
                                     services and tasks are down */
} owner_scope;

enum { OP_SERVICES = 0, OP_TASKS, OP_CLOSE, OP_DONE };

/* An observer inside the library (notify.c's notifier): told that a state
 * changed, that a stop begins and that the manager is being freed.  It
 * only reads the manager. */
typedef struct bgli_svc_observer {
    void (*changed)(void *ud);
    void (*stopping)(const char *owner, int64_t timeout_ns, void *ud);
    void (*gone)(void *ud);
} bgli_svc_observer;

/* One bgl_services_stop_full() in progress. */
typedef struct stop_op {
    char *owner;                  /* NULL: everything */
    int phase;
    int has_deadline, deadline_passed;
    uint64_t timeout_ns;          /* the caller's, if has_deadline */
    bgl_timer *timer;             /* the caller's deadline, then the wait
                                     for the owner's tasks */
    bgl_services_stopped_fn done;
    void *userdata;
    bgl_services *mgr;
} stop_op;

struct bgl_services {
    bgl_loop *loop;
    bgl_service **svcs;           /* registration order */
    size_t n, cap;
    bgl_service **table;          /* by name, open addressing */
    size_t table_cap;
    size_t n_unresolved;          /* dependency edges without a target */
    void *walk_stack;             /* scratch of the iterative walks */
    size_t walk_cap;
    uint64_t walk_gen;
    owner_scope **owners;
    size_t n_owners;
    bgl_resources *res;           /* per manager ("per loop") */
    int close_pending;
    stop_op **ops;                /* stops in progress, in call order */
    size_t n_ops;
    bgl_timer *reconcile_timer;
    unsigned depth;               /* > 0 while hooks/callbacks run */
    char *last_error;
    bgl_service_state_cb state_cb;
    void *state_ud;
    int keepalive;
    int keepalive_fresh;          /* enabled since the last check */
    int holding;
    bgl_tasks *tasks;
    const bgli_svc_observer *observer;
    void *observer_ud;
};

/* service-run.c */
BGL_INTERNAL uint64_t bgli_svc_now(const bgl_services *mgr);
/* Forget the manager's last error text; every entry point that may set one
 * starts with this, so a text never outlives its call. */
BGL_INTERNAL void bgli_svc_clear_error(bgl_services *mgr);
/* Set the last error text (printf-style) and return err. */
BGL_INTERNAL int bgli_svc_refuse(bgl_services *mgr, int err, const char *fmt, ...)
    BGL_PRINTF(3, 4);
BGL_INTERNAL void bgli_svc_schedule(bgl_services *mgr);
BGL_INTERNAL void bgli_svc_set_error(bgl_service *s, char *text);   /* takes ownership */
BGL_INTERNAL void bgli_svc_notify(bgl_service *s, bgl_service_state old_state);
BGL_INTERNAL void bgli_svc_set_want(bgl_service *s, int want);
BGL_INTERNAL void bgli_svc_set_state(bgl_service *s, bgl_service_state st);
BGL_INTERNAL int bgli_svc_schedule_init(bgl_services *mgr);
BGL_INTERNAL int bgli_svc_init_run(bgl_service *s);   /* timers and stack */
/* The work ended: wind up its tasks, close its resources, settle in st. */
BGL_INTERNAL void bgli_svc_end(bgl_service *s, bgl_service_state st, char *error);
BGL_INTERNAL void bgli_svc_close_run(bgl_service *s);   /* tasks done: close */
BGL_INTERNAL int bgli_stack_busy(const bgl_resources *rs);
BGL_INTERNAL uint64_t bgli_svc_grace(const bgl_service *s);
BGL_INTERNAL uint64_t bgli_svc_close_timeout(const bgl_service *s);
BGL_INTERNAL int bgli_owner_matches(const bgl_service *s, const char *owner);
BGL_INTERNAL int bgli_any_active(const bgl_services *mgr);

/* service-stop.c */
BGL_INTERNAL void bgli_svc_begin_stop(bgl_service *s);
BGL_INTERNAL void bgli_svc_stop_timeout(bgl_timer *timer, void *userdata);
BGL_INTERNAL int bgli_owner_covers(const char *a, const char *b);   /* NULL: all */
BGL_INTERNAL void bgli_svc_want_down(bgl_service *s);
/* Progress of task waits, stops in progress and scope closes; calls the
 * done callbacks of finished stops.  From the reconcile pass. */
BGL_INTERNAL void bgli_stops_advance(bgl_services *mgr);
BGL_INTERNAL void bgli_stops_free(bgl_services *mgr);
BGL_INTERNAL int bgli_stops_pending_done(const bgl_services *mgr);
BGL_INTERNAL int bgli_scope_pending(const owner_scope *o);
BGL_INTERNAL owner_scope *bgli_find_scope(const bgl_services *mgr, const char *owner);
/* Registry entries of `owner` (NULL: all) that a stop awaits. */
BGL_INTERNAL int bgli_stops_awaited(const bgl_services *mgr, const char *owner);

/* service-deps.c */
BGL_INTERNAL bgl_service *bgli_svc_lookup(const bgl_services *mgr, const char *name);
BGL_INTERNAL int bgli_deps_insert(bgl_services *mgr, bgl_service *s);   /* -ENOMEM */
BGL_INTERNAL void bgli_deps_detach(bgl_services *mgr, bgl_service *s);
BGL_INTERNAL void bgli_deps_resolve(bgl_services *mgr);
BGL_INTERNAL void bgli_deps_added(bgl_services *mgr, bgl_service *s);
BGL_INTERNAL void bgli_svc_refresh(bgl_service *s);   /* after want/state/ending */
BGL_INTERNAL int bgli_svc_is_up(const bgl_service *s);               /* starting/running */
BGL_INTERNAL int bgli_svc_is_busy(const bgl_service *s);             /* up or stopping/ending */
BGL_INTERNAL int bgli_svc_should_be_down(const bgl_service *s);
BGL_INTERNAL int bgli_svc_can_start(const bgl_service *s);
BGL_INTERNAL int bgli_svc_has_busy_dependents(const bgl_service *s);
/* Activity ("NOTHING LEFT"): bgli_walk_begin() opens a walk whose memo
 * serves every bgli_svc_is_active() until the next one; nothing may change
 * in between. */
BGL_INTERNAL void bgli_walk_begin(const bgl_services *mgr);
BGL_INTERNAL int bgli_svc_is_active(const bgl_service *s);
BGL_INTERNAL int bgli_svc_failed_for_good(const bgl_service *s);   /* in a walk */
BGL_INTERNAL int bgli_svc_in_use(const bgl_service *s);
BGL_INTERNAL const char *bgli_svc_waiting_for(const bgl_service *s);
/* Check that `roots` and everything they depend on exist and form no cycle;
 * on success mark them all wanted (a newly wanted one gets its start
 * history reset).  On failure set mgr->last_error and change nothing. */
BGL_INTERNAL int bgli_svc_want_closure(bgl_services *mgr, bgl_service **roots, size_t n);

/* service-restart.c */
BGL_INTERNAL int bgli_svc_restart_init(bgl_service *s);
BGL_INTERNAL void bgli_svc_restart_reset(bgl_service *s);
BGL_INTERNAL int bgli_svc_start_limit_hit(const bgl_service *s, uint64_t now);
BGL_INTERNAL void bgli_svc_record_start(bgl_service *s, uint64_t now);
BGL_INTERNAL void bgli_svc_after_end(bgl_service *s);                  /* apply the policy */
BGL_INTERNAL void bgli_svc_restart_fired(bgl_timer *timer, void *userdata);

#endif /* BGLOOP_SERVICE_INTERNAL_H */
