/* service_hooks.c - the C hooks of a Services manager, calling its Python
 * hook table.
 *
 * set_hooks() fills the table once: start(host), stop(host) and
 * cancel(host) receive the object given to add() for that service;
 * close(obj, done) closes a pushed resource; on_state(name, old, new)
 * follows every state change.  The table is shared with every service, so
 * a manager that cannot be freed (something still active when the Services
 * object goes away) keeps working hooks.
 *
 * Hooks run from loop callbacks with the GIL held; they take it anyway,
 * since bgl_services_free() and bgl_loop_free() may call them too.
 */
#include "services.h"
#include "core.h"

#include <errno.h>
#include <stdlib.h>

void bglpy_hook_raised(struct bglpy_core *core, PyObject *where)
{
    if (PyErr_ExceptionMatches(PyExc_Exception) || !core || !core->loop) {
        PyErr_WriteUnraisable(where);
    } else if (core->busy) {
        bglpy_stash_exception(core);
    } else if (!core->exc_type) {
        /* Outside a kick (a hook run by a call from plain code): kept for
         * the end of the next one, without a stop request that take_stop()
         * would mistake for the manager's. */
        PyErr_Fetch(&core->exc_type, &core->exc_value, &core->exc_tb);
    } else {
        PyErr_WriteUnraisable(where);
    }
}

static void hook_error(hooktab *hooks, PyObject *where)
{
    bglpy_hook_raised(hooks->core, where);
}

/* Call a hook with one argument; a Python error is reported as unraisable
 * (the C hook cannot return it).  0, or -1 if there was no hook or it
 * raised. */
static int call_hook(hooktab *hooks, int which, PyObject *arg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = hooks->fn[which];
    int rc = -1;
    if (fn) {
        Py_INCREF(fn); /* set_hooks() from inside the hook may replace it */
        PyObject *r = PyObject_CallFunctionObjArgs(fn, arg, NULL);
        if (r) {
            Py_DECREF(r);
            rc = 0;
        } else {
            hook_error(hooks, fn);
        }
        Py_DECREF(fn);
    }
    PyGILState_Release(g);
    return rc;
}

static int hook_start(bgl_service *svc, void *ud)
{
    (void)svc;
    service_ud *u = ud;
    return call_hook(u->hooks, HOOK_START, u->host) < 0 ? -EIO : 0;
}

static void hook_stop(bgl_service *svc, void *ud)
{
    (void)svc;
    service_ud *u = ud;
    call_hook(u->hooks, HOOK_STOP, u->host);
}

static void hook_cancel(bgl_service *svc, void *ud)
{
    (void)svc;
    service_ud *u = ud;
    call_hook(u->hooks, HOOK_CANCEL, u->host);
}

static void hook_destroy(void *ud)
{
    service_ud *u = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF(u->host);
    PyGILState_Release(g);
    free(u);
}

const bgl_service_hooks bglpy_service_hooks = {
    .start = hook_start,
    .stop = hook_stop,
    .cancel = hook_cancel,
    .destroy = hook_destroy,
};

void bglpy_state_cb(bgl_service *svc, bgl_service_state old_state,
                    bgl_service_state new_state, void *userdata)
{
    hooktab *hooks = userdata;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = hooks->fn[HOOK_STATE];
    if (fn) {
        Py_INCREF(fn);
        PyObject *r = PyObject_CallFunction(fn, "sss", bgl_service_name(svc),
                                            bgl_service_state_name((int)old_state),
                                            bgl_service_state_name((int)new_state));
        if (r)
            Py_DECREF(r);
        else
            hook_error(hooks, fn);
        Py_DECREF(fn);
    }
    PyGILState_Release(g);
}

/* done() of stop(owner, timeout, done): called once, from a loop callback,
 * when the owner's stop is complete. */
void bglpy_stopped_cb(bgl_services *mgr, const char *owner, void *userdata)
{
    (void)mgr;
    (void)owner;
    stop_ud *u = userdata;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunctionObjArgs(u->done, NULL);
    if (r)
        Py_DECREF(r);
    else
        hook_error(u->hooks, u->done);
    Py_DECREF(u->done);
    free(u);
    PyGILState_Release(g);
}

void bglpy_hooks_clear(hooktab *hooks)
{
    for (int i = 0; i < N_HOOKS; i++)
        Py_CLEAR(hooks->fn[i]);
}
