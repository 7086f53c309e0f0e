/* service-internal.h - the service manager's data, shared by service.c (state
 * machine and API), service-deps.c (dependency graph) and service-restart.c
 * (restart policy, backoff, start limit).  Not installed. */
#ifndef BGLOOP_SERVICE_INTERNAL_H
#define BGLOOP_SERVICE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bgloop/service.h"

struct bgl_service {
    bgl_services *mgr;
    char *name, *owner;
    char **deps;                  /* dependency names */
    size_t n_deps;
    bgl_service_config cfg;       /* name/owner/depends_on unused */
    bgl_service_hooks hooks;
    void *userdata;

    bgl_service_state state;
    int want;                     /* should be up */
    int stop_requested;           /* the current run was asked to stop */
    int stop_timed_out;           /* ... and did not end in time */
    int cancelled;                /* the cancel hook was called */
    int ending;                   /* ended; resources closing */
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
    int mark;                     /* graph walks */
};

typedef struct owner_scope {
    char *owner;
    bgl_resources *res;
    int close_pending;            /* a stop will close it once the owner's
                                     services are down */
    uint64_t close_timeout_ns;
} owner_scope;

struct bgl_services {
    bgl_loop *loop;
    bgl_service **svcs;           /* registration order */
    size_t n, cap;
    owner_scope **owners;
    size_t n_owners;
    bgl_resources *res;           /* per manager ("per loop") */
    int close_pending;
    bgl_timer *reconcile_timer;
    unsigned depth;               /* > 0 while hooks/callbacks run */
    char *last_error;
    bgl_service_state_cb state_cb;
    void *state_ud;
    int keepalive;
    int holding;
    bgl_tasks *tasks;
};

/* service.c */
uint64_t svc_now(const bgl_services *mgr);
void svc_schedule(bgl_services *mgr);
void svc_set_error(bgl_service *s, char *text);   /* takes ownership */
void svc_notify(bgl_service *s, bgl_service_state old_state);

/* service-deps.c */
bgl_service *svc_lookup(const bgl_services *mgr, const char *name);
int svc_is_up(const bgl_service *s);                 /* starting/running */
int svc_is_busy(const bgl_service *s);               /* up or stopping/ending */
int svc_should_be_down(const bgl_service *s);
int svc_can_start(const bgl_service *s);
int svc_has_busy_dependents(const bgl_service *s);
int svc_is_active(const bgl_service *s);
const char *svc_waiting_for(const bgl_service *s);
/* Check that `roots` and everything they depend on exist and form no cycle;
 * on success mark them all wanted (a newly wanted one gets its start
 * history reset).  On failure set mgr->last_error and change nothing. */
int svc_want_closure(bgl_services *mgr, bgl_service **roots, size_t n);

/* service-restart.c */
int svc_restart_init(bgl_service *s);
void svc_restart_reset(bgl_service *s);
int svc_start_limit_hit(const bgl_service *s, uint64_t now);
void svc_record_start(bgl_service *s, uint64_t now);
void svc_after_end(bgl_service *s);                  /* apply the policy */
void svc_restart_fired(bgl_timer *timer, void *userdata);

#endif /* BGLOOP_SERVICE_INTERNAL_H */
