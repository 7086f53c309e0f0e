/* services.h - what the services parts of the extension share: services.c
 * (Services), service_hooks.c (its C hooks), service_config.c (add()'s
 * arguments), resources.c (pushed Python objects), tasks.c (Tasks).
 */
#ifndef BGLPY_SERVICES_H
#define BGLPY_SERVICES_H

#include "bglpy.h"

#include "bgloop/resource.h"
#include "bgloop/service.h"
#include "bgloop/task.h"

/* A str argument as UTF-8, or NULL for None when allow_none.  TypeError
 * names `what` and the type it got.  0, or -1 with an exception set. */
int bglpy_str_arg(PyObject *obj, const char *what, int allow_none, const char **out);

/* The manager behind a Services object, or NULL if obj is not one; *loop
 * gets its loop (NULL once the loop is closed). */
bgl_services *bglpy_services_manager(bglpy_state *st, PyObject *obj, bgl_loop **loop);

/* The registry behind a Tasks object, or NULL if obj is not one. */
bgl_tasks *bglpy_tasks_registry(bglpy_state *st, PyObject *obj);

/* Push obj on rs; closing it calls closer(obj, done) with a ResourceDone
 * `done` the closer calls once obj is closed.  core: the Core the stack's
 * loop belongs to.  0, or -1 with an exception set. */
int bglpy_resource_push(bglpy_state *st, bgl_resources *rs, const char *label, PyObject *obj,
                        PyObject *closer, PyObject *core);

/* The Python hooks of a manager (set_hooks()), shared with its services. */
enum { HOOK_START, HOOK_STOP, HOOK_CANCEL, HOOK_CLOSE, HOOK_STATE, N_HOOKS };

typedef struct {
    PyObject *fn[N_HOOKS]; /* NULL until set_hooks() */
    struct bglpy_core *core; /* the manager's (it holds the reference) */
} hooktab;

/* The userdata of a stop's done callback. */
typedef struct {
    PyObject *done;        /* owned */
    hooktab *hooks;
} stop_ud;

/* The userdata of one C service: its manager's hooks and its host. */
typedef struct {
    hooktab *hooks;
    PyObject *host; /* owned; dropped by the destroy hook */
} service_ud;

/* service_hooks.c: the C side of the hook table. */
extern const bgl_service_hooks bglpy_service_hooks;
void bglpy_state_cb(bgl_service *svc, bgl_service_state old_state,
                    bgl_service_state new_state, void *userdata); /* userdata: hooktab */
void bglpy_stopped_cb(bgl_services *mgr, const char *owner, void *userdata); /* stop_ud */
void bglpy_hooks_clear(hooktab *hooks);
/* What a hook let escape: an Exception is reported as unraisable (the C
 * hook cannot return it); a KeyboardInterrupt or SystemExit ends the kick
 * and is raised from it, as from any other callback of the loop. */
void bglpy_hook_raised(struct bglpy_core *core, PyObject *where);

/* add()'s optional arguments; NULL or None keeps the manager's default. */
typedef struct {
    PyObject *depends_on, *restart, *stop_timeout, *close_timeout, *restart_delay,
        *restart_delay_max, *start_limit_burst, *start_limit_interval;
} bglpy_service_args;

/* Fill cfg (name and owner already set) from a.  Returns the
 * NULL-terminated dependency names, pointing into *keep: free() the array,
 * Py_XDECREF(*keep).  NULL with an exception set on a bad argument
 * (error_type, if not NULL, for an unknown restart policy). */
const char **bglpy_service_config(const bglpy_service_args *a, PyObject *error_type,
                                  bgl_service_config *cfg, PyObject **keep);

/* resources.c's part of bglpy_services_init(): the ResourceDone type. */
int bglpy_resources_init(PyObject *module, bglpy_state *st);

#endif /* BGLPY_SERVICES_H */
