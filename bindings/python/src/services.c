/* services.c - bgloop._bgloop.Services: the C service manager for Python.
 *
 * A thin wrapper around one bgl_services on a Core's bgl_loop.  The C
 * manager owns every state, the dependency order, readiness gating, restart
 * policy and backoff, the start limit, the stop timeout and the resource
 * stacks.  Python only supplies the hooks, through one "host" object per
 * service:
 *
 *   host._bgl_start()   launch the asyncio task running fn(ctx);
 *   host._bgl_stop()    set ctx.stopping;
 *   host._bgl_cancel()  cancel the task;
 *
 * and reports back with ready(name) / exited(name, failed, error).  Pushed
 * resources are closed by the manager-wide `closer(obj, done)` callable,
 * which calls `done()` or `done(error)` once the object is closed (maybe
 * later, from a task).
 *
 * C hooks run from loop callbacks; with the poll backend those run without
 * the GIL, so every hook takes it with PyGILState_Ensure() (a no-op
 * re-entry when it is already held).
 */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/service.h"

typedef struct {
    PyObject_HEAD
    bgl_services *mgr;
    PyObject *core;      /* the Core whose loop the manager runs on (strong) */
    PyObject *closer;    /* closer(obj, done) or NULL */
    PyObject *on_state;  /* on_state(name, old, new) or NULL */
} ServicesObject;

typedef struct {
    PyObject_HEAD
    bgl_resource *res;   /* NULL once reported */
} DoneObject;

static PyTypeObject *ServicesType;
static PyTypeObject *DoneType;

/* ---- helpers -------------------------------------------------------------- */

/* Raise for a manager error: the manager's own text when it has one (it
 * names the services involved), else the errno text. */
static PyObject *raise_mgr(ServicesObject *self, int err, const char *what)
{
    const char *text = self->mgr ? bgl_services_last_error(self->mgr) : NULL;
    PyObject *type = PyExc_ValueError;
    if (err == -ENOMEM)
        return PyErr_NoMemory();
    if (err == -EBUSY)
        type = PyExc_RuntimeError;
    if (text && *text)
        PyErr_Format(type, "%s", text);
    else
        PyErr_Format(type, "%s: %s", what, bgl_strerror(err));
    return NULL;
}

static int seconds_to_ns(PyObject *obj, const char *what, uint64_t *out)
{
    double s = PyFloat_AsDouble(obj);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(s) || s < 0 || s > 1e9) {
        PyErr_Format(PyExc_ValueError, "%s must be a finite number of seconds >= 0", what);
        return -1;
    }
    *out = (uint64_t)(s * 1e9);
    return 0;
}

/* Optional owner argument: None -> NULL (all owners). */
static int owner_arg(PyObject *obj, const char **out)
{
    if (obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "owner must be a str or None");
        return -1;
    }
    *out = PyUnicode_AsUTF8AndSize(obj, NULL);
    return *out ? 0 : -1;
}

static int check_open(ServicesObject *self)
{
    if (!self->mgr) {
        PyErr_SetString(PyExc_RuntimeError, "the service manager is closed");
        return -1;
    }
    return 0;
}

static bgl_service *find(ServicesObject *self, PyObject *name_obj)
{
    if (check_open(self) < 0)
        return NULL;
    if (!PyUnicode_Check(name_obj)) {
        PyErr_SetString(PyExc_TypeError, "a service name must be a str");
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8AndSize(name_obj, NULL);
    if (!name)
        return NULL;
    bgl_service *svc;
    if (bgl_services_find(self->mgr, name, &svc) < 0) {
        PyErr_Format(PyExc_KeyError, "no service named %R", name_obj);
        return NULL;
    }
    return svc;
}

/* Call host.<method>() from a hook; report a Python error as unraisable
 * (the hook has no way to return it).  Returns 0 or -1. */
static int call_host(void *host, const char *method)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod((PyObject *)host, method, NULL);
    int rc = 0;
    if (r)
        Py_DECREF(r);
    else {
        PyErr_WriteUnraisable((PyObject *)host);
        rc = -1;
    }
    PyGILState_Release(g);
    return rc;
}

/* ---- hooks ---------------------------------------------------------------- */

static int hook_start(bgl_service *svc, void *host)
{
    (void)svc;
    return call_host(host, "_bgl_start") < 0 ? -EIO : 0;
}

static void hook_stop(bgl_service *svc, void *host)
{
    (void)svc;
    call_host(host, "_bgl_stop");
}

static void hook_cancel(bgl_service *svc, void *host)
{
    (void)svc;
    call_host(host, "_bgl_cancel");
}

static void hook_destroy(void *host)
{
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF((PyObject *)host);
    PyGILState_Release(g);
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
    ServicesObject *self = userdata;
    PyGILState_STATE g = PyGILState_Ensure();
    if (self->on_state) {
        PyObject *r = PyObject_CallFunction(self->on_state, "sss", bgl_service_name(svc),
                                            bgl_service_state_name((int)old_state),
                                            bgl_service_state_name((int)new_state));
        if (r)
            Py_DECREF(r);
        else
            PyErr_WriteUnraisable(self->on_state);
    }
    PyGILState_Release(g);
}

/* ---- resources ------------------------------------------------------------ */

typedef struct {
    PyObject *obj;
    PyObject *closer;    /* strong: the closer at push time */
} pushed;

static int resource_close(bgl_resource *res, void *object)
{
    pushed *p = object;
    PyGILState_STATE g = PyGILState_Ensure();
    DoneObject *done = PyObject_New(DoneObject, DoneType);
    if (!done) {
        PyErr_Clear();
        PyGILState_Release(g);
        return -ENOMEM;
    }
    done->res = res;
    PyObject *r = PyObject_CallFunctionObjArgs(p->closer, p->obj, (PyObject *)done, NULL);
    if (r) {
        Py_DECREF(r);
    } else if (done->res) {
        /* The closer itself raised before reporting: report it for it. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *text = value ? PyObject_Str(value) : NULL;
        const char *msg = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
        if (!msg)
            PyErr_Clear();
        bgl_resource *token = done->res;
        done->res = NULL;
        bgl_resource_done(token, -EIO, msg ? msg : "close raised");
        Py_XDECREF(text);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        PyErr_WriteUnraisable(p->closer);
    }
    Py_DECREF(done);
    PyGILState_Release(g);
    return BGL_RESOURCE_ASYNC;
}

static void resource_release(void *object)
{
    pushed *p = object;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF(p->obj);
    Py_DECREF(p->closer);
    PyGILState_Release(g);
    free(p);
}

static PyObject *done_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    DoneObject *self = (DoneObject *)op;
    PyObject *error = Py_None;
    static char *kwlist[] = {"error", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:done", kwlist, &error))
        return NULL;
    if (!self->res)
        Py_RETURN_FALSE; /* reported already: exactly once, as the C API needs */
    bgl_resource *token = self->res;
    self->res = NULL;
    if (error == Py_None) {
        bgl_resource_done(token, 0, NULL);
    } else {
        PyObject *text = PyObject_Str(error);
        if (!text)
            return NULL;
        const char *msg = PyUnicode_AsUTF8AndSize(text, NULL);
        bgl_resource_done(token, -EIO, msg ? msg : "close failed");
        Py_DECREF(text);
        if (!msg)
            return NULL;
    }
    Py_RETURN_TRUE;
}

static void done_dealloc(PyObject *op)
{
    DoneObject *self = (DoneObject *)op;
    /* Dropped without reporting (its close task vanished): the manager must
     * still hear about it, or the entry would wait for ever. */
    if (self->res)
        bgl_resource_done(self->res, -ECANCELED, "close never completed");
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static PyType_Slot done_slots[] = {
    {Py_tp_call, done_call},
    {Py_tp_dealloc, done_dealloc},
    {Py_tp_doc, "done(error=None): report that a pushed resource finished closing."},
    {0, NULL},
};

static PyType_Spec done_spec = {
    .name = "bgloop._bgloop.ResourceDone",
    .basicsize = sizeof(DoneObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = done_slots,
};

/* ---- the Services type ---------------------------------------------------- */

static PyObject *svcs_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *core;
    static char *kwlist[] = {"core", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!:Services", kwlist, bglpy_CoreType, &core))
        return NULL;
    bglpy_core *c = (bglpy_core *)core;
    if (!c->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Services(): the loop is closed");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    ServicesObject *self = (ServicesObject *)alloc(type, 0);
    if (!self)
        return NULL;
    int r = bgl_services_new(c->loop, &self->mgr);
    if (r < 0) {
        Py_DECREF(self);
        return bglpy_raise_errno(r, "bgl_services_new");
    }
    bgl_services_set_state_cb(self->mgr, state_cb, self);
    Py_INCREF(core);
    self->core = core;
    return (PyObject *)self;
}

static int svcs_traverse(PyObject *op, visitproc visit, void *arg)
{
    ServicesObject *self = (ServicesObject *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->core);
    Py_VISIT(self->closer);
    Py_VISIT(self->on_state);
    return 0;
}

static int svcs_clear(PyObject *op)
{
    ServicesObject *self = (ServicesObject *)op;
    Py_CLEAR(self->closer);
    Py_CLEAR(self->on_state);
    return 0;
}

static void svcs_dealloc(PyObject *op)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject_GC_UnTrack(op);
    if (self->mgr) {
        bgl_services_set_state_cb(self->mgr, NULL, NULL);
        /* -EBUSY while something is still active: then the manager (and
         * the loop it is attached to) is deliberately leaked rather than
         * freed under a running service. */
        if (bgl_services_free(self->mgr) == 0)
            self->mgr = NULL;
    }
    svcs_clear(op);
    if (!self->mgr)
        Py_CLEAR(self->core);
    PyTypeObject *tp = Py_TYPE(op);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(op);
    Py_DECREF(tp);
}

static PyObject *svcs_set_hooks(PyObject *op, PyObject *args, PyObject *kwargs)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *closer, *on_state;
    static char *kwlist[] = {"closer", "on_state", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:set_hooks", kwlist, &closer, &on_state))
        return NULL;
    if (!PyCallable_Check(closer) || (on_state != Py_None && !PyCallable_Check(on_state))) {
        PyErr_SetString(PyExc_TypeError, "set_hooks(): closer and on_state must be callable");
        return NULL;
    }
    /* (Py_XSETREF is not in the 3.10 limited API.) */
    PyObject *old_closer = self->closer, *old_state = self->on_state;
    Py_INCREF(closer);
    self->closer = closer;
    self->on_state = on_state == Py_None ? NULL : on_state;
    Py_XINCREF(self->on_state);
    Py_XDECREF(old_closer);
    Py_XDECREF(old_state);
    Py_RETURN_NONE;
}

static PyObject *svcs_add(PyObject *op, PyObject *args, PyObject *kwargs)
{
    ServicesObject *self = (ServicesObject *)op;
    const char *name, *owner;
    PyObject *deps, *host, *stop_timeout, *close_timeout, *delay, *delay_max, *interval;
    int restart;
    unsigned int burst;
    static char *kwlist[] = {"name", "owner", "depends_on", "restart", "stop_timeout",
                             "close_timeout", "restart_delay", "restart_delay_max",
                             "start_limit_burst", "start_limit_interval", "host", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ssOiOOOOIOO:add", kwlist, &name, &owner,
                                     &deps, &restart, &stop_timeout, &close_timeout, &delay,
                                     &delay_max, &burst, &interval, &host))
        return NULL;
    if (check_open(self) < 0)
        return NULL;

    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = name;
    cfg.owner = owner;
    cfg.restart = (bgl_restart_policy)restart;
    cfg.start_limit_burst = burst;
    if (seconds_to_ns(stop_timeout, "stop_timeout", &cfg.stop_timeout_ns) < 0 ||
        seconds_to_ns(close_timeout, "close_timeout", &cfg.close_timeout_ns) < 0 ||
        seconds_to_ns(delay, "restart_delay", &cfg.restart_delay_ns) < 0 ||
        seconds_to_ns(delay_max, "restart_delay_max", &cfg.restart_delay_max_ns) < 0 ||
        seconds_to_ns(interval, "start_limit_interval", &cfg.start_limit_interval_ns) < 0)
        return NULL;

    PyObject *seq = PySequence_Tuple(deps);
    if (!seq)
        return NULL;
    Py_ssize_t n = PyTuple_Size(seq);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "depends_on must hold str names");
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
    cfg.depends_on = names;

    Py_INCREF(host); /* owned by the service from here on; destroy drops it */
    int r = bgl_service_add(self->mgr, &cfg, &py_hooks, host, NULL);
    free(names);
    Py_DECREF(seq);
    if (r < 0) {
        Py_DECREF(host);
        return raise_mgr(self, r, name);
    }
    Py_RETURN_NONE;
}

static PyObject *svcs_remove(PyObject *op, PyObject *name)
{
    ServicesObject *self = (ServicesObject *)op;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_remove(svc);
    if (r == -EBUSY) {
        PyErr_Format(PyExc_RuntimeError, "service %R is still active or wanted; stop it first",
                     name);
        return NULL;
    }
    if (r < 0)
        return raise_mgr(self, r, "remove");
    Py_RETURN_NONE;
}

/* start(owner=None) / stop(owner=None) for every service of an owner. */
static PyObject *svcs_start(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:start", &owner_obj) || owner_arg(owner_obj, &owner) < 0 ||
        check_open(self) < 0)
        return NULL;
    int r = bgl_services_start(self->mgr, owner);
    if (r < 0)
        return raise_mgr(self, r, "start");
    Py_RETURN_NONE;
}

static PyObject *svcs_stop(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:stop", &owner_obj) || owner_arg(owner_obj, &owner) < 0 ||
        check_open(self) < 0)
        return NULL;
    int r = bgl_services_stop(self->mgr, owner);
    if (r < 0)
        return raise_mgr(self, r, "stop");
    Py_RETURN_NONE;
}

static PyObject *svcs_start_one(PyObject *op, PyObject *name)
{
    ServicesObject *self = (ServicesObject *)op;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_start(svc);
    if (r < 0)
        return raise_mgr(self, r, "start");
    Py_RETURN_NONE;
}

static PyObject *svcs_stop_one(PyObject *op, PyObject *name)
{
    ServicesObject *self = (ServicesObject *)op;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_stop(svc);
    if (r < 0)
        return raise_mgr(self, r, "stop");
    Py_RETURN_NONE;
}

/* ready(name) -> int: 0, or the (negative) reason the report was ignored
 * (-EALREADY, -ESRCH: e.g. a stop came first) - not errors for the host. */
static PyObject *svcs_ready(PyObject *op, PyObject *name)
{
    bgl_service *svc = find((ServicesObject *)op, name);
    if (!svc)
        return NULL;
    return PyLong_FromLong(bgl_service_ready(svc));
}

/* exited(name, failed, error=None) -> int, like ready(). */
static PyObject *svcs_exited(PyObject *op, PyObject *args)
{
    PyObject *name;
    int failed;
    const char *error = NULL;
    if (!PyArg_ParseTuple(args, "Op|z:exited", &name, &failed, &error))
        return NULL;
    bgl_service *svc = find((ServicesObject *)op, name);
    if (!svc)
        return NULL;
    return PyLong_FromLong(bgl_service_exited(svc, failed, error));
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

/* info(name) -> dict with everything bgl_service_get_info() knows, times in
 * seconds relative to the loop's clock now. */
static PyObject *svcs_info(PyObject *op, PyObject *name)
{
    ServicesObject *self = (ServicesObject *)op;
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
    bgl_resources *rs = bgl_service_resources(svc);
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (set_item(d, "state", PyUnicode_FromString(bgl_service_state_name((int)info.state))) < 0 ||
        set_item(d, "owner", str_or_none(info.owner)) < 0 ||
        set_item(d, "restarts", PyLong_FromUnsignedLong(info.restarts)) < 0 ||
        set_item(d, "error", str_or_none(info.error)) < 0 ||
        set_item(d, "since", PyFloat_FromDouble(now >= info.changed_ns
                                                    ? (double)(now - info.changed_ns) / 1e9
                                                    : 0.0)) < 0 ||
        set_item(d, "wanted", PyBool_FromLong(info.wanted)) < 0 ||
        set_item(d, "restart_pending", PyBool_FromLong(info.restart_pending)) < 0 ||
        set_item(d, "restart_in",
                 info.restart_pending
                     ? PyFloat_FromDouble(info.restart_at_ns > now
                                              ? (double)(info.restart_at_ns - now) / 1e9
                                              : 0.0)
                     : (Py_INCREF(Py_None), Py_None)) < 0 ||
        set_item(d, "stop_timed_out", PyBool_FromLong(info.stop_timed_out)) < 0 ||
        set_item(d, "waiting_for", str_or_none(info.waiting_for)) < 0 ||
        set_item(d, "resources", PyLong_FromLong(rs ? bgl_resources_count(rs) : 0)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *svcs_names(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:names", &owner_obj) || owner_arg(owner_obj, &owner) < 0 ||
        check_open(self) < 0)
        return NULL;
    int n = bgl_services_list(self->mgr, owner, NULL, 0);
    if (n < 0)
        return bglpy_raise_errno(n, "bgl_services_list");
    bgl_service **list = calloc((size_t)n + 1, sizeof *list);
    if (!list)
        return PyErr_NoMemory();
    n = bgl_services_list(self->mgr, owner, list, (size_t)n);
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < n; i++) {
        PyObject *s = PyUnicode_FromString(bgl_service_name(list[i]));
        if (!s || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    free(list);
    return out;
}

static PyObject *svcs_active(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:active", &owner_obj) || owner_arg(owner_obj, &owner) < 0 ||
        check_open(self) < 0)
        return NULL;
    int n = bgl_services_active(self->mgr, owner);
    if (n < 0)
        return bglpy_raise_errno(n, "bgl_services_active");
    return PyLong_FromLong(n);
}

static PyObject *svcs_exit_code(PyObject *op, PyObject *unused)
{
    (void)unused;
    ServicesObject *self = (ServicesObject *)op;
    if (check_open(self) < 0)
        return NULL;
    return PyLong_FromLong(bgl_services_exit_code(self->mgr));
}

/* Defined in services_tasks.c. */
bgl_tasks *bglpy_tasks_registry(PyObject *obj);

/* nothing_left(tasks=None) -> bool: bgl_nothing_left() of the manager and,
 * if given, a Tasks registry. */
static PyObject *svcs_nothing_left(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *tasks_obj = Py_None;
    if (!PyArg_ParseTuple(args, "|O:nothing_left", &tasks_obj) || check_open(self) < 0)
        return NULL;
    bgl_tasks *reg = NULL;
    if (tasks_obj != Py_None && !(reg = bglpy_tasks_registry(tasks_obj))) {
        PyErr_SetString(PyExc_TypeError, "nothing_left(): tasks must be a Tasks object or None");
        return NULL;
    }
    return PyBool_FromLong(bgl_nothing_left(self->mgr, reg) == 1);
}

/* push(name, obj, label): put obj on the service's resource stack; the
 * closer set with set_hooks() closes it. */
static PyObject *svcs_push(PyObject *op, PyObject *args)
{
    ServicesObject *self = (ServicesObject *)op;
    PyObject *name, *obj;
    const char *label;
    if (!PyArg_ParseTuple(args, "OOs:push", &name, &obj, &label))
        return NULL;
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    if (!self->closer) {
        PyErr_SetString(PyExc_RuntimeError, "push(): set_hooks() was not called");
        return NULL;
    }
    pushed *p = malloc(sizeof *p);
    if (!p)
        return PyErr_NoMemory();
    Py_INCREF(obj);
    Py_INCREF(self->closer);
    p->obj = obj;
    p->closer = self->closer;
    int r = bgl_resource_push(bgl_service_resources(svc), label, p, resource_close,
                              resource_release, NULL);
    if (r < 0) {
        Py_DECREF(obj);
        Py_DECREF(self->closer);
        free(p);
        return bglpy_raise_errno(r, "bgl_resource_push");
    }
    Py_RETURN_NONE;
}

/* report(name) -> dict: what the last close of the service's resources did. */
static PyObject *svcs_report(PyObject *op, PyObject *name)
{
    bgl_service *svc = find((ServicesObject *)op, name);
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

static PyMethodDef svcs_methods[] = {
    {"set_hooks", (PyCFunction)(void (*)(void))svcs_set_hooks, METH_VARARGS | METH_KEYWORDS,
     "set_hooks(closer, on_state): resource closer and state-change callback."},
    {"add", (PyCFunction)(void (*)(void))svcs_add, METH_VARARGS | METH_KEYWORDS,
     "add(name, owner, depends_on, restart, stop_timeout, close_timeout, restart_delay, "
     "restart_delay_max, start_limit_burst, start_limit_interval, host): register."},
    {"remove", svcs_remove, METH_O, "remove(name): unregister a service that is not active."},
    {"start", svcs_start, METH_VARARGS, "start(owner=None): want an owner's services up."},
    {"stop", svcs_stop, METH_VARARGS, "stop(owner=None): stop an owner's services."},
    {"start_one", svcs_start_one, METH_O, "start_one(name)"},
    {"stop_one", svcs_stop_one, METH_O, "stop_one(name)"},
    {"ready", svcs_ready, METH_O, "ready(name) -> int: report readiness."},
    {"exited", svcs_exited, METH_VARARGS, "exited(name, failed, error=None) -> int."},
    {"info", svcs_info, METH_O, "info(name) -> dict"},
    {"names", svcs_names, METH_VARARGS, "names(owner=None) -> list, registration order."},
    {"active", svcs_active, METH_VARARGS, "active(owner=None) -> int"},
    {"exit_code", svcs_exit_code, METH_NOARGS, "exit_code() -> 1 if a service failed for good"},
    {"nothing_left", svcs_nothing_left, METH_VARARGS,
     "nothing_left(tasks=None) -> bool: nothing active (services, stacks, tasks)."},
    {"push", svcs_push, METH_VARARGS, "push(name, obj, label): add a resource."},
    {"report", svcs_report, METH_O, "report(name) -> dict of the last resource close."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot svcs_slots[] = {
    {Py_tp_new, svcs_new},
    {Py_tp_dealloc, svcs_dealloc},
    {Py_tp_traverse, svcs_traverse},
    {Py_tp_clear, svcs_clear},
    {Py_tp_methods, svcs_methods},
    {Py_tp_doc, "Services(core): the C service manager on a Core's loop."},
    {0, NULL},
};

static PyType_Spec svcs_spec = {
    .name = "bgloop._bgloop.Services",
    .basicsize = sizeof(ServicesObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = svcs_slots,
};

static int add_int(PyObject *module, const char *name, long value)
{
    return PyModule_AddIntConstant(module, name, value);
}

int bglpy_services_init(PyObject *module)
{
    ServicesType = (PyTypeObject *)PyType_FromSpec(&svcs_spec);
    if (!ServicesType)
        return -1;
    if (PyModule_AddObject(module, "Services", (PyObject *)ServicesType) < 0) {
        Py_DECREF(ServicesType);
        return -1;
    }
    Py_INCREF(ServicesType); /* one reference for the module, one for us */
    DoneType = (PyTypeObject *)PyType_FromSpec(&done_spec);
    if (!DoneType)
        return -1;
    if (add_int(module, "RESTART_NO", BGL_RESTART_NO) < 0 ||
        add_int(module, "RESTART_ON_FAILURE", BGL_RESTART_ON_FAILURE) < 0 ||
        add_int(module, "RESTART_ALWAYS", BGL_RESTART_ALWAYS) < 0)
        return -1;
    return 0;
}
