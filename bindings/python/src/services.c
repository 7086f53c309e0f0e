/* services.c - bgloop._bgloop.Services: libbgloop's service manager.
 *
 * One bgl_services on a Core's bgl_loop.  The C manager is the only
 * authority on service policy: states, dependency order, readiness gating,
 * restart backoff, the start limit, stop timeouts and cancellation, the
 * owner-stop deadline, the service's leftover tasks (given a Tasks registry),
 * resource stacks, "failed for good", keep-alive and the exit code.  Its
 * configuration is validated there, once; this file only converts Python
 * types and turns the manager's refusals into exceptions carrying its text
 * (ServiceError for registration and dependency errors, RuntimeError for
 * "still active", TypeError for a wrong Python type).
 *
 * Python supplies the hooks once, with set_hooks(): start(host), stop(host)
 * and cancel(host) receive the object given to add() for that service;
 * close(obj, done) closes a pushed resource; on_state(name, old, new)
 * follows every state change.  The hooks live in a table shared with every
 * service, so a manager that cannot be freed (something still active when
 * the Services object goes away) keeps working hooks.
 *
 * Hooks run from loop callbacks with the GIL held; they take it anyway,
 * since bgl_services_free() and bgl_loop_free() may call them too.
 */
#include "services.h"
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/service.h"

enum { HOOK_START, HOOK_STOP, HOOK_CANCEL, HOOK_CLOSE, HOOK_STATE, N_HOOKS };

static char *hook_names[N_HOOKS + 1] = {"start", "stop", "cancel", "close", "on_state", NULL};

typedef struct {
    PyObject *fn[N_HOOKS]; /* NULL until set_hooks() */
} hooktab;

typedef struct {
    PyObject_HEAD
    bgl_services *mgr;   /* NULL if it could not be created */
    hooktab *hooks;
    PyObject *core;      /* the Core whose loop the manager runs on */
    PyObject *tasks;     /* the Tasks registry given to the manager, or NULL */
} bglpy_services;

/* The userdata of one C service. */
typedef struct {
    hooktab *hooks;
    PyObject *host;
} service_ud;

/* ---- helpers -------------------------------------------------------------- */

int bglpy_str_arg(PyObject *obj, const char *what, int allow_none, const char **out)
{
    if (allow_none && obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyObject *tname = bglpy_type_name(obj);
        if (tname) {
            PyErr_Format(PyExc_TypeError, "%s must be a str%s, not %U", what,
                         allow_none ? " or None" : "", tname);
            Py_DECREF(tname);
        }
        return -1;
    }
    *out = PyUnicode_AsUTF8AndSize(obj, NULL);
    return *out ? 0 : -1;
}

/* Optional owner argument of a method: owner=None means every owner. */
static int owner_args(PyObject *const *args, Py_ssize_t nargs, const char *fn, const char **owner)
{
    *owner = NULL;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (owner)", fn);
        return -1;
    }
    return nargs ? bglpy_str_arg(args[0], "owner", 1, owner) : 0;
}

static int check_open(bglpy_services *self)
{
    if (!self->mgr) {
        PyErr_SetString(PyExc_RuntimeError, "the service manager is closed");
        return -1;
    }
    return 0;
}

/* bgloop._bgloop.ServiceError, looked up in the module when raised. */
static PyObject *service_error(bglpy_services *self)
{
    PyObject *module = PyType_GetModule(Py_TYPE(self));
    PyObject *cls = module ? PyObject_GetAttrString(module, "ServiceError") : NULL;
    if (!cls)
        PyErr_Clear();
    return cls; /* new reference or NULL */
}

/* Raise for a refusal of the manager, with its own text (it names the
 * services and fields involved), else `fallback` and the errno text. */
static PyObject *raise_mgr(bglpy_services *self, int err, const char *fallback)
{
    if (err == -ENOMEM)
        return PyErr_NoMemory();
    const char *text = bgl_services_last_error(self->mgr);
    PyObject *type = NULL;
    if (err == -EBUSY) {
        Py_INCREF(PyExc_RuntimeError);
        type = PyExc_RuntimeError;
    } else if (err == -EINVAL || err == -EEXIST || err == -ENOENT || err == -ELOOP) {
        type = service_error(self);
    }
    if (!type)
        return bglpy_raise_errno(err, fallback);
    if (text && *text)
        PyErr_SetString(type, text);
    else
        PyErr_Format(type, "%s: %s", fallback, bgl_strerror(err));
    Py_DECREF(type);
    return NULL;
}

static bgl_service *find(bglpy_services *self, PyObject *name_obj)
{
    const char *name;
    if (check_open(self) < 0 || bglpy_str_arg(name_obj, "a service name", 0, &name) < 0)
        return NULL;
    bgl_service *svc;
    if (bgl_services_find(self->mgr, name, &svc) < 0) {
        PyErr_Format(PyExc_KeyError, "no service named %R", name_obj);
        return NULL;
    }
    return svc;
}

static PyObject *names_of(bgl_service **list, int n)
{
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < n; i++) {
        PyObject *s = PyUnicode_FromString(bgl_service_name(list[i]));
        if (!s || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    return out;
}

/* The services of owner (NULL: all), registration order; free() it. */
static bgl_service **list_services(bglpy_services *self, const char *owner, int *n)
{
    int count = bgl_services_list(self->mgr, owner, NULL, 0);
    if (count < 0) {
        bglpy_raise_errno(count, "bgl_services_list");
        return NULL;
    }
    bgl_service **list = calloc((size_t)count + 1, sizeof *list);
    if (!list) {
        PyErr_NoMemory();
        return NULL;
    }
    *n = bgl_services_list(self->mgr, owner, list, (size_t)count);
    return list;
}

/* ---- hooks ---------------------------------------------------------------- */

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
            PyErr_WriteUnraisable(fn);
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

static const bgl_service_hooks py_hooks = {
    .start = hook_start,
    .stop = hook_stop,
    .cancel = hook_cancel,
    .destroy = hook_destroy,
};

static void state_cb(bgl_service *svc, bgl_service_state old_state, bgl_service_state new_state,
                     void *userdata)
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
            PyErr_WriteUnraisable(fn);
        Py_DECREF(fn);
    }
    PyGILState_Release(g);
}

/* done() of stop(owner, timeout, done): called once, from a loop callback,
 * when the owner's stop is complete. */
static void stopped_cb(bgl_services *mgr, const char *owner, void *userdata)
{
    (void)mgr;
    (void)owner;
    PyObject *done = userdata;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunctionObjArgs(done, NULL);
    if (r)
        Py_DECREF(r);
    else
        PyErr_WriteUnraisable(done);
    Py_DECREF(done);
    PyGILState_Release(g);
}

static void hooks_clear(hooktab *hooks)
{
    for (int i = 0; i < N_HOOKS; i++)
        Py_CLEAR(hooks->fn[i]);
}

/* ---- the Services type ---------------------------------------------------- */

static PyObject *svcs_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    bglpy_state *st = bglpy_type_state(type);
    PyObject *core, *tasks = Py_None;
    static char *kwlist[] = {"core", "tasks", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|O:Services", kwlist, st->Core, &core,
                                     &tasks))
        return NULL;
    bgl_tasks *reg = NULL;
    if (tasks != Py_None && !(reg = bglpy_tasks_registry(st, tasks))) {
        PyErr_SetString(PyExc_TypeError, "Services(): tasks must be a Tasks object or None");
        return NULL;
    }
    bglpy_core *c = (bglpy_core *)core;
    if (bglpy_check_open(c) < 0)
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_services *self = (bglpy_services *)alloc(type, 0);
    if (!self)
        return NULL;
    Py_INCREF(core);
    self->core = core;
    if (!(self->hooks = calloc(1, sizeof *self->hooks))) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    int r = bgl_services_new(c->loop, &self->mgr);
    if (r == 0 && reg) {
        r = bgl_services_set_tasks(self->mgr, reg);
        if (r == 0) {
            Py_INCREF(tasks);
            self->tasks = tasks;
        }
    }
    if (r < 0) {
        Py_DECREF(self);
        return bglpy_raise_errno(r, "Services()");
    }
    bgl_services_set_state_cb(self->mgr, state_cb, self->hooks);
    return (PyObject *)self;
}

static int svcs_traverse(bglpy_services *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->core);
    Py_VISIT(self->tasks);
    if (self->hooks)
        for (int i = 0; i < N_HOOKS; i++)
            Py_VISIT(self->hooks->fn[i]);
    /* The hosts: the C services own them for this object. */
    if (self->mgr) {
        int n = bgl_services_list(self->mgr, NULL, NULL, 0);
        bgl_service *one[64];
        bgl_service **list = n <= 64 ? one : calloc((size_t)n, sizeof *list);
        if (list) {
            n = bgl_services_list(self->mgr, NULL, list, n <= 64 ? 64 : (size_t)n);
            int rc = 0;
            for (int i = 0; i < n && !rc; i++) {
                service_ud *u = bgl_service_userdata(list[i]);
                if (u && u->host)
                    rc = visit(u->host, arg);
            }
            if (list != one)
                free(list);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int svcs_clear(bglpy_services *self)
{
    if (self->hooks)
        hooks_clear(self->hooks);
    return 0;
}

static void svcs_dealloc(bglpy_services *self)
{
    PyObject_GC_UnTrack(self);
    int freed = 1;
    if (self->mgr) {
        /* -EBUSY while something is still active: the manager, its hooks,
         * its loop and registry are then deliberately kept rather than
         * freed under a running service. */
        freed = bgl_services_free(self->mgr) == 0;
        self->mgr = NULL;
    }
    if (freed) {
        if (self->hooks) {
            hooks_clear(self->hooks);
            free(self->hooks);
        }
        Py_CLEAR(self->core);
        Py_CLEAR(self->tasks);
    }
    PyTypeObject *tp = Py_TYPE(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

/* set_hooks(*, start, stop, cancel, close, on_state=None) */
static PyObject *svcs_set_hooks(bglpy_services *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fn[N_HOOKS] = {NULL, NULL, NULL, NULL, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOOO:set_hooks", hook_names, &fn[0],
                                     &fn[1], &fn[2], &fn[3], &fn[4]))
        return NULL;
    for (int i = 0; i < N_HOOKS; i++) {
        if (i == HOOK_STATE && fn[i] == Py_None) {
            fn[i] = NULL;
            continue;
        }
        if (!fn[i] || !PyCallable_Check(fn[i])) {
            PyErr_Format(PyExc_TypeError, "set_hooks(): %s must be callable%s", hook_names[i],
                         i == HOOK_STATE ? " or None" : "");
            return NULL;
        }
    }
    if (!self->hooks)
        return PyErr_NoMemory();
    for (int i = 0; i < N_HOOKS; i++) {
        PyObject *old = self->hooks->fn[i];
        Py_XINCREF(fn[i]);
        self->hooks->fn[i] = fn[i];
        Py_XDECREF(old);
    }
    Py_RETURN_NONE;
}

/* A duration field of the configuration: None keeps the C default. */
static int cfg_seconds(PyObject *o, const char *svc, const char *field, uint64_t *out)
{
    if (!o || o == Py_None)
        return 0;
    char what[256];
    snprintf(what, sizeof what, "service '%s': %s", svc, field);
    int64_t ns;
    if (bglpy_seconds(o, what, 1, &ns) < 0)
        return -1;
    *out = ns < 0 ? (uint64_t)INT64_MAX : (uint64_t)ns;
    return 0;
}

static int cfg_restart(bglpy_services *self, PyObject *o, const char *svc,
                       bgl_restart_policy *out)
{
    if (!o || o == Py_None)
        return 0;
    if (PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8AndSize(o, NULL);
        if (!s)
            return -1;
        for (int p = BGL_RESTART_NO; p <= BGL_RESTART_ALWAYS; p++) {
            if (strcmp(s, bgl_restart_policy_name(p)) == 0) {
                *out = (bgl_restart_policy)p;
                return 0;
            }
        }
        PyObject *cls = service_error(self);
        if (cls) {
            PyErr_Format(cls,
                         "service '%s': unknown restart policy %R (expected 'no', "
                         "'on-failure' or 'always')",
                         svc, o);
            Py_DECREF(cls);
        }
        return -1;
    }
    if (PyLong_Check(o) && !PyBool_Check(o)) {
        long v = PyLong_AsLong(o);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = (bgl_restart_policy)v; /* the manager checks the range */
        return 0;
    }
    PyObject *tname = bglpy_type_name(o);
    if (tname) {
        PyErr_Format(PyExc_TypeError, "service '%s': restart must be a str, not %U", svc, tname);
        Py_DECREF(tname);
    }
    return -1;
}

static int cfg_count(PyObject *o, const char *svc, const char *field, unsigned *out)
{
    if (!o || o == Py_None)
        return 0;
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyObject *tname = bglpy_type_name(o);
        if (tname) {
            PyErr_Format(PyExc_TypeError, "service '%s': %s must be an int, not %U", svc, field,
                         tname);
            Py_DECREF(tname);
        }
        return -1;
    }
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        v = -1;
    }
    if (v < 0 || (unsigned long)v > (unsigned long)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "service '%s': %s must be an int >= 0 (0 = no limit), got %R",
                     svc, field, o);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* depends_on: a sequence of names (not one str).  Fills a NULL-terminated
 * array pointing into *keep, which the caller releases with free() and
 * Py_DECREF(). */
static const char **cfg_deps(PyObject *o, const char *svc, PyObject **keep)
{
    *keep = NULL;
    if (!o || o == Py_None)
        return calloc(1, sizeof(const char *));
    if (PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError,
                     "service '%s': depends_on must be a sequence of names, not the string %R "
                     "(write (%R,))",
                     svc, o, o);
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(o);
    if (!seq) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "service '%s': depends_on must be a sequence of names",
                         svc);
        }
        return NULL;
    }
    Py_ssize_t n = PyTuple_Size(seq);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "service '%s': dependency names must be str, got %R",
                         svc, item);
            names[i] = NULL;
        } else {
            names[i] = PyUnicode_AsUTF8AndSize(item, NULL);
        }
        if (!names[i]) {
            free(names);
            Py_DECREF(seq);
            return NULL;
        }
    }
    *keep = seq;
    return names;
}

/* add(name, owner, host, *, depends_on=(), restart="no", stop_timeout=None,
 *     close_timeout=None, restart_delay=None, restart_delay_max=None,
 *     start_limit_burst=None, start_limit_interval=None)
 * None keeps the manager's default. */
static PyObject *svcs_add(bglpy_services *self, PyObject *args, PyObject *kwargs)
{
    PyObject *name_obj, *owner_obj, *host, *deps = NULL, *restart = NULL, *stop_timeout = NULL,
             *close_timeout = NULL, *delay = NULL, *delay_max = NULL, *burst = NULL,
             *interval = NULL;
    static char *kwlist[] = {"name", "owner", "host", "depends_on", "restart", "stop_timeout",
                             "close_timeout", "restart_delay", "restart_delay_max",
                             "start_limit_burst", "start_limit_interval", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|$OOOOOOOO:add", kwlist, &name_obj,
                                     &owner_obj, &host, &deps, &restart, &stop_timeout,
                                     &close_timeout, &delay, &delay_max, &burst, &interval))
        return NULL;
    const char *name, *owner;
    if (check_open(self) < 0 || bglpy_str_arg(name_obj, "a service name", 0, &name) < 0)
        return NULL;
    char what[256];
    snprintf(what, sizeof what, "service '%s': owner", name);
    if (bglpy_str_arg(owner_obj, what, 0, &owner) < 0)
        return NULL;
    if (!self->hooks->fn[HOOK_START]) {
        PyErr_SetString(PyExc_RuntimeError, "add(): set_hooks() was not called");
        return NULL;
    }

    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = name;
    cfg.owner = owner;
    if (cfg_restart(self, restart, name, &cfg.restart) < 0 ||
        cfg_seconds(stop_timeout, name, "stop_timeout", &cfg.stop_timeout_ns) < 0 ||
        cfg_seconds(close_timeout, name, "close_timeout", &cfg.close_timeout_ns) < 0 ||
        cfg_seconds(delay, name, "restart_delay", &cfg.restart_delay_ns) < 0 ||
        cfg_seconds(delay_max, name, "restart_delay_max", &cfg.restart_delay_max_ns) < 0 ||
        cfg_count(burst, name, "start_limit_burst", &cfg.start_limit_burst) < 0 ||
        cfg_seconds(interval, name, "start_limit_interval", &cfg.start_limit_interval_ns) < 0)
        return NULL;
    PyObject *keep;
    const char **names = cfg_deps(deps, name, &keep);
    if (!names)
        return NULL;
    cfg.depends_on = names;

    service_ud *u = malloc(sizeof *u);
    int r = -ENOMEM;
    if (u) {
        u->hooks = self->hooks;
        u->host = host;
        r = bgl_service_add(self->mgr, &cfg, &py_hooks, u, NULL);
    }
    PyObject *result = NULL;
    if (r < 0) {
        free(u);
        raise_mgr(self, r, "add()");
    } else {
        Py_INCREF(host); /* the service's now; its destroy hook drops it */
        Py_INCREF(Py_None);
        result = Py_None;
    }
    free(names);
    Py_XDECREF(keep);
    return result;
}

/* remove(name): unregister one service that is neither active nor wanted. */
static PyObject *svcs_remove(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_remove(svc);
    if (r < 0)
        return raise_mgr(self, r, "remove()");
    Py_RETURN_NONE;
}

/* remove_owner(owner=None) -> list of the names removed: all of the
 * owner's services, or none (RuntimeError naming those still in use). */
static PyObject *svcs_remove_owner(bglpy_services *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner;
    int n;
    if (owner_args(args, nargs, "remove_owner", &owner) < 0 || check_open(self) < 0)
        return NULL;
    bgl_service **list = list_services(self, owner, &n);
    if (!list)
        return NULL;
    PyObject *names = names_of(list, n);
    free(list);
    if (!names)
        return NULL;
    int r = bgl_services_remove(self->mgr, owner);
    if (r < 0) {
        Py_DECREF(names);
        return raise_mgr(self, r, "remove_owner()");
    }
    return names;
}

static PyObject *svcs_start(bglpy_services *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner;
    if (owner_args(args, nargs, "start", &owner) < 0 || check_open(self) < 0)
        return NULL;
    int r = bgl_services_start(self->mgr, owner);
    if (r < 0)
        return raise_mgr(self, r, "start()");
    Py_RETURN_NONE;
}

/* stop(owner=None, timeout=None, done=None): see bgl_services_stop_full();
 * done() is called once, from the loop, when the owner's stop is complete. */
static PyObject *svcs_stop(bglpy_services *self, PyObject *args, PyObject *kwargs)
{
    PyObject *owner_obj = Py_None, *timeout = Py_None, *done = Py_None;
    static char *kwlist[] = {"owner", "timeout", "done", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:stop", kwlist, &owner_obj, &timeout,
                                     &done))
        return NULL;
    const char *owner;
    int64_t timeout_ns;
    if (bglpy_str_arg(owner_obj, "owner", 1, &owner) < 0 ||
        bglpy_seconds(timeout, "timeout", 1, &timeout_ns) < 0 || check_open(self) < 0)
        return NULL;
    if (done != Py_None && !PyCallable_Check(done)) {
        PyErr_SetString(PyExc_TypeError, "stop(): done must be callable or None");
        return NULL;
    }
    int r;
    if (done == Py_None) {
        r = bgl_services_stop_full(self->mgr, owner, timeout_ns, NULL, NULL);
    } else {
        Py_INCREF(done); /* dropped by stopped_cb */
        r = bgl_services_stop_full(self->mgr, owner, timeout_ns, stopped_cb, done);
        if (r < 0)
            Py_DECREF(done);
    }
    if (r < 0)
        return raise_mgr(self, r, "stop()");
    Py_RETURN_NONE;
}

static PyObject *svcs_start_one(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_start(svc);
    if (r < 0)
        return raise_mgr(self, r, "start_one()");
    Py_RETURN_NONE;
}

static PyObject *svcs_stop_one(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_stop(svc);
    if (r < 0)
        return raise_mgr(self, r, "stop_one()");
    Py_RETURN_NONE;
}

/* ready(name) -> int: 0, or the (negative) reason the report was ignored
 * (-EALREADY, -ESRCH: e.g. a stop came first) - not errors for the host. */
static PyObject *svcs_ready(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    return PyLong_FromLong(bgl_service_ready(svc));
}

/* exited(name, failed, error=None) -> int, like ready(). */
static PyObject *svcs_exited(bglpy_services *self, PyObject *args)
{
    PyObject *name;
    int failed;
    const char *error = NULL;
    if (!PyArg_ParseTuple(args, "Op|z:exited", &name, &failed, &error))
        return NULL;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    return PyLong_FromLong(bgl_service_exited(svc, failed, error));
}

/* host(name) -> the host object given to add(). */
static PyObject *svcs_host(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    service_ud *u = bgl_service_userdata(svc);
    Py_INCREF(u->host);
    return u->host;
}

static int set_item(PyObject *d, const char *key, PyObject *value)
{
    if (!value)
        return -1;
    int r = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return r;
}

static PyObject *str_or_none(const char *s)
{
    if (s)
        return PyUnicode_FromString(s);
    Py_RETURN_NONE;
}

static PyObject *ago(uint64_t now, uint64_t then)
{
    return PyFloat_FromDouble(now >= then ? (double)(now - then) / 1e9 : 0.0);
}

/* info(name) -> dict of bgl_service_get_info(), times in seconds relative
 * to the loop's clock now. */
static PyObject *svcs_info(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    bgl_service_info info;
    int r = bgl_service_get_info(svc, &info);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_service_get_info");
    uint64_t now = 0;
    bglpy_core *core = (bglpy_core *)self->core;
    if (core->loop)
        bgl_loop_now(core->loop, &now);
    int res = bgl_resources_count(bgl_service_resources(svc));
    PyObject *restart_in = Py_None;
    Py_INCREF(restart_in);
    if (info.restart_pending) {
        Py_DECREF(restart_in);
        restart_in = ago(info.restart_at_ns, now);
    }
    PyObject *d = PyDict_New();
    if (!d || set_item(d, "state", PyUnicode_FromString(bgl_service_state_name((int)info.state))) ||
        set_item(d, "owner", str_or_none(info.owner)) ||
        set_item(d, "restarts", PyLong_FromUnsignedLong(info.restarts)) ||
        set_item(d, "error", str_or_none(info.error)) ||
        set_item(d, "since", ago(now, info.changed_ns)) ||
        set_item(d, "wanted", PyBool_FromLong(info.wanted)) ||
        set_item(d, "restart_pending", PyBool_FromLong(info.restart_pending)) ||
        set_item(d, "restart_in", restart_in) ||
        set_item(d, "stop_timed_out", PyBool_FromLong(info.stop_timed_out)) ||
        set_item(d, "waiting_for", str_or_none(info.waiting_for)) ||
        set_item(d, "failed_for_good", PyBool_FromLong(info.failed_for_good)) ||
        set_item(d, "resources", PyLong_FromLong(res > 0 ? res : 0))) {
        Py_XDECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *svcs_names(bglpy_services *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner;
    int n;
    if (owner_args(args, nargs, "names", &owner) < 0 || check_open(self) < 0)
        return NULL;
    bgl_service **list = list_services(self, owner, &n);
    if (!list)
        return NULL;
    PyObject *out = names_of(list, n);
    free(list);
    return out;
}

/* failed() -> names of the services that failed for good. */
static PyObject *svcs_failed(bglpy_services *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    int n = bgl_services_list_failed(self->mgr, NULL, 0);
    if (n < 0)
        return bglpy_raise_errno(n, "bgl_services_list_failed");
    bgl_service **list = calloc((size_t)n + 1, sizeof *list);
    if (!list)
        return PyErr_NoMemory();
    n = bgl_services_list_failed(self->mgr, list, (size_t)n);
    PyObject *out = names_of(list, n);
    free(list);
    return out;
}

static PyObject *svcs_active(bglpy_services *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner;
    if (owner_args(args, nargs, "active", &owner) < 0 || check_open(self) < 0)
        return NULL;
    int n = bgl_services_active(self->mgr, owner);
    if (n < 0)
        return bglpy_raise_errno(n, "bgl_services_active");
    return PyLong_FromLong(n);
}

static PyObject *svcs_exit_code(bglpy_services *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    return PyLong_FromLong(bgl_services_exit_code(self->mgr));
}

static PyObject *svcs_nothing_left(bglpy_services *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    return PyBool_FromLong(bgl_services_nothing_left(self->mgr) == 1);
}

/* set_keepalive(enable): while enabled, the manager stops the loop with
 * its exit code once nothing is left (read it with Core.take_stop()). */
static PyObject *svcs_set_keepalive(bglpy_services *self, PyObject *arg)
{
    int enable = PyObject_IsTrue(arg);
    if (enable < 0 || check_open(self) < 0)
        return NULL;
    int r = bgl_services_set_keepalive(self->mgr, enable);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_services_set_keepalive");
    Py_RETURN_NONE;
}

/* push(name, obj, label): put obj on the service's resource stack; the
 * close hook closes it. */
static PyObject *svcs_push(bglpy_services *self, PyObject *args)
{
    PyObject *name, *obj;
    const char *label;
    if (!PyArg_ParseTuple(args, "OOs:push", &name, &obj, &label))
        return NULL;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    if (!self->hooks->fn[HOOK_CLOSE]) {
        PyErr_SetString(PyExc_RuntimeError, "push(): set_hooks() was not called");
        return NULL;
    }
    if (bglpy_resource_push(bglpy_type_state(Py_TYPE(self)), bgl_service_resources(svc), label,
                            obj, self->hooks->fn[HOOK_CLOSE]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* report(name) -> dict: what the last close of the service's resources did. */
static PyObject *svcs_report(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    bgl_resources_report rep;
    int r = bgl_resources_get_report(bgl_service_resources(svc), &rep);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_resources_get_report");
    return Py_BuildValue("{s:n,s:n,s:n,s:z}", "closed", (Py_ssize_t)rep.closed, "failed",
                         (Py_ssize_t)rep.failed, "timed_out", (Py_ssize_t)rep.timed_out,
                         "errors", rep.errors);
}

#define METH(fn, flags) (PyCFunction)(void (*)(void))(fn), flags

static PyMethodDef svcs_methods[] = {
    {"set_hooks", METH(svcs_set_hooks, METH_VARARGS | METH_KEYWORDS),
     "set_hooks(*, start, stop, cancel, close, on_state=None): start(host), stop(host) and "
     "cancel(host) get the host given to add(); close(obj, done) closes a pushed object and "
     "calls done() or done(error); on_state(name, old, new)."},
    {"add", METH(svcs_add, METH_VARARGS | METH_KEYWORDS),
     "add(name, owner, host, *, depends_on=(), restart='no', stop_timeout=None, "
     "close_timeout=None, restart_delay=None, restart_delay_max=None, start_limit_burst=None, "
     "start_limit_interval=None): register; None keeps the manager's default."},
    {"remove", METH(svcs_remove, METH_O), "remove(name): unregister a service not in use."},
    {"remove_owner", METH(svcs_remove_owner, METH_FASTCALL),
     "remove_owner(owner=None) -> list: unregister all of an owner's services, or none."},
    {"start", METH(svcs_start, METH_FASTCALL), "start(owner=None): want an owner's services up."},
    {"stop", METH(svcs_stop, METH_VARARGS | METH_KEYWORDS),
     "stop(owner=None, timeout=None, done=None): stop an owner's services; done() once it "
     "is complete."},
    {"start_one", METH(svcs_start_one, METH_O), "start_one(name)"},
    {"stop_one", METH(svcs_stop_one, METH_O), "stop_one(name)"},
    {"ready", METH(svcs_ready, METH_O), "ready(name) -> int: report readiness."},
    {"exited", METH(svcs_exited, METH_VARARGS), "exited(name, failed, error=None) -> int."},
    {"host", METH(svcs_host, METH_O), "host(name) -> the host object given to add()."},
    {"info", METH(svcs_info, METH_O), "info(name) -> dict"},
    {"names", METH(svcs_names, METH_FASTCALL), "names(owner=None) -> list, registration order."},
    {"failed", METH(svcs_failed, METH_NOARGS), "failed() -> names of services failed for good."},
    {"active", METH(svcs_active, METH_FASTCALL), "active(owner=None) -> int"},
    {"exit_code", METH(svcs_exit_code, METH_NOARGS),
     "exit_code() -> 1 if a service failed for good, else 0."},
    {"nothing_left", METH(svcs_nothing_left, METH_NOARGS),
     "nothing_left() -> bool: no service, resource stack or registered task active."},
    {"set_keepalive", METH(svcs_set_keepalive, METH_O),
     "set_keepalive(enable): stop the loop with exit_code() once nothing is left."},
    {"push", METH(svcs_push, METH_VARARGS), "push(name, obj, label): add a resource."},
    {"report", METH(svcs_report, METH_O), "report(name) -> dict of the last resource close."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot svcs_slots[] = {
    {Py_tp_new, svcs_new},
    {Py_tp_dealloc, svcs_dealloc},
    {Py_tp_traverse, svcs_traverse},
    {Py_tp_clear, svcs_clear},
    {Py_tp_methods, svcs_methods},
    {Py_tp_doc, "Services(core, tasks=None): the C service manager on a Core's loop, "
                "counting a Tasks registry's entries as its services' tasks."},
    {0, NULL},
};

static PyType_Spec svcs_spec = {
    .name = "bgloop._bgloop.Services",
    .basicsize = sizeof(bglpy_services),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = svcs_slots,
};

int bglpy_services_init(PyObject *module, bglpy_state *st)
{
    if (bglpy_add_type(module, &svcs_spec, &st->Services, 1) < 0 ||
        bglpy_resources_init(module, st) < 0)
        return -1;
    PyObject *err = PyErr_NewExceptionWithDoc(
        "bgloop.ServiceError",
        "A service cannot be registered or started: duplicate name, bad configuration, "
        "unknown dependency, dependency cycle...  The message is the service manager's and "
        "names the services.",
        PyExc_ValueError, NULL);
    if (!err || PyModule_AddObject(module, "ServiceError", err) < 0) {
        Py_XDECREF(err);
        return -1;
    }
    if (PyModule_AddIntConstant(module, "RESTART_NO", BGL_RESTART_NO) < 0 ||
        PyModule_AddIntConstant(module, "RESTART_ON_FAILURE", BGL_RESTART_ON_FAILURE) < 0 ||
        PyModule_AddIntConstant(module, "RESTART_ALWAYS", BGL_RESTART_ALWAYS) < 0)
        return -1;
    return 0;
}
