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
 * Python supplies the hooks once, with set_hooks() (see service_hooks.c).
 */
#include "services.h"
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/service.h"

static char *hook_names[N_HOOKS + 1] = {"start", "stop", "cancel", "close", "on_state", NULL};

typedef struct {
    PyObject_HEAD
    bgl_services *mgr;   /* NULL if it could not be created */
    hooktab *hooks;
    PyObject *core;      /* the Core whose loop the manager runs on */
    PyObject *tasks;     /* the Tasks registry given to the manager, or NULL */
} bglpy_services;

/* ---- helpers -------------------------------------------------------------- */

int bglpy_str_arg(PyObject *obj, const char *what, int allow_none, const char **out)
{
    if (allow_none && obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        bglpy_wrong_type(obj, what, allow_none ? "a str or None" : "a str");
        return -1;
    }
    Py_ssize_t n;
    *out = PyUnicode_AsUTF8AndSize(obj, &n);
    if (!*out) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be valid text (no lone surrogate), got %R",
                         what, obj);
        }
        return -1;
    }
    /* C sees the text up to the first NUL: "a\0b" would silently be "a". */
    if (strlen(*out) != (size_t)n) {
        PyErr_Format(PyExc_ValueError, "%s must not contain a NUL character, got %R", what, obj);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* A text of the manager as str.  Its messages are cut to a fixed size,
 * possibly inside a UTF-8 sequence of a name: decoding never fails. */
static PyObject *text_of(const char *s)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
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

/* For calls that change something: nothing runs once the loop is closed, so
 * a start or stop there would only be recorded, never carried out. */
static int check_live(bglpy_services *self)
{
    if (check_open(self) < 0)
        return -1;
    if (!((bglpy_core *)self->core)->loop) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the service manager's event loop is closed; nothing can start or stop "
                        "on it any more");
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
    PyObject *msg = text && *text ? text_of(text) : NULL;
    if (msg) {
        PyErr_SetObject(type, msg);
        Py_DECREF(msg);
    } else {
        PyErr_Clear();
        PyErr_Format(type, "%s: %s", fallback, bgl_strerror(err));
    }
    Py_DECREF(type);
    return NULL;
}

/* Raise for a refusal of a query, which leaves no text of its own: an
 * empty owner is refused as stop() refuses it. */
static PyObject *raise_query(bglpy_services *self, int err, const char *owner, const char *what)
{
    if (err != -EINVAL || !owner || *owner)
        return bglpy_raise_errno(err, what);
    PyObject *type = service_error(self);
    if (type) {
        PyErr_SetString(type, "an owner must be a non-empty string");
        Py_DECREF(type);
    }
    return NULL;
}

static bgl_service *find_checked(bglpy_services *self, PyObject *name_obj, int live)
{
    const char *name;
    if ((live ? check_live(self) : check_open(self)) < 0 ||
        bglpy_str_arg(name_obj, "a service name", 0, &name) < 0)
        return NULL;
    bgl_service *svc;
    if (bgl_services_find(self->mgr, name, &svc) < 0) {
        PyErr_Format(PyExc_KeyError, "no service named %R", name_obj);
        return NULL;
    }
    return svc;
}

static bgl_service *find(bglpy_services *self, PyObject *name_obj)
{
    return find_checked(self, name_obj, 0);
}

static bgl_service *find_live(bglpy_services *self, PyObject *name_obj)
{
    return find_checked(self, name_obj, 1);
}

static PyObject *names_of(bgl_service **list, int n)
{
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < n; i++) {
        PyObject *s = text_of(bgl_service_name(list[i]));
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
        raise_query(self, count, owner, "bgl_services_list");
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

/* ---- the Services type ---------------------------------------------------- */

bgl_services *bglpy_services_manager(bglpy_state *st, PyObject *obj, bgl_loop **loop)
{
    if (!obj || Py_TYPE(obj) != st->Services || !((bglpy_services *)obj)->mgr)
        return NULL;
    *loop = ((bglpy_core *)((bglpy_services *)obj)->core)->loop;
    return ((bglpy_services *)obj)->mgr;
}

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
    self->hooks->core = c;
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
    bgl_services_set_state_cb(self->mgr, bglpy_state_cb, self->hooks);
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
    int n = self->mgr ? bgl_services_list(self->mgr, NULL, NULL, 0) : 0;
    bgl_service **list = n > 0 ? calloc((size_t)n, sizeof *list) : NULL;
    int rc = 0;
    if (list) {
        n = bgl_services_list(self->mgr, NULL, list, (size_t)n);
        for (int i = 0; i < n && !rc; i++) {
            service_ud *u = bgl_service_userdata(list[i]);
            rc = visit(u->host, arg);
        }
        free(list);
    }
    return rc;
}

static int svcs_clear(bglpy_services *self)
{
    if (self->hooks)
        bglpy_hooks_clear(self->hooks);
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
            bglpy_hooks_clear(self->hooks);
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
    if (check_live(self) < 0 || bglpy_str_arg(name_obj, "a service name", 0, &name) < 0)
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
    bglpy_service_args values = {deps, restart, stop_timeout, close_timeout,
                                 delay,  delay_max, burst,        interval};
    PyObject *error_type = service_error(self), *keep;
    const char **names = bglpy_service_config(&values, error_type, &cfg, &keep);
    Py_XDECREF(error_type);
    if (!names)
        return NULL;
    cfg.depends_on = names;

    service_ud *u = malloc(sizeof *u);
    int r = -ENOMEM;
    if (u) {
        u->hooks = self->hooks;
        u->host = host;
        r = bgl_service_add(self->mgr, &cfg, &bglpy_service_hooks, u, NULL);
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
    bgl_service *svc = find_live(self, name);
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
    if (owner_args(args, nargs, "remove_owner", &owner) < 0 || check_live(self) < 0)
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
    if (owner_args(args, nargs, "start", &owner) < 0 || check_live(self) < 0)
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
        bglpy_seconds(timeout, "timeout", 1, &timeout_ns) < 0 || check_live(self) < 0)
        return NULL;
    if (done != Py_None && !PyCallable_Check(done)) {
        PyErr_SetString(PyExc_TypeError, "stop(): done must be callable or None");
        return NULL;
    }
    int r;
    if (done == Py_None) {
        r = bgl_services_stop_full(self->mgr, owner, timeout_ns, NULL, NULL);
    } else {
        stop_ud *u = malloc(sizeof *u); /* freed by bglpy_stopped_cb */
        if (!u)
            return PyErr_NoMemory();
        Py_INCREF(done);
        u->done = done;
        u->hooks = self->hooks;
        r = bgl_services_stop_full(self->mgr, owner, timeout_ns, bglpy_stopped_cb, u);
        if (r < 0) {
            Py_DECREF(done);
            free(u);
        }
    }
    if (r < 0)
        return raise_mgr(self, r, "stop()");
    Py_RETURN_NONE;
}

static PyObject *svcs_start_one(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find_live(self, name);
    if (!svc)
        return NULL;
    int r = bgl_service_start(svc);
    if (r < 0)
        return raise_mgr(self, r, "start_one()");
    Py_RETURN_NONE;
}

static PyObject *svcs_stop_one(bglpy_services *self, PyObject *name)
{
    bgl_service *svc = find_live(self, name);
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
    PyObject *name, *error = Py_None;
    int failed;
    if (!PyArg_ParseTuple(args, "Op|O:exited", &name, &failed, &error))
        return NULL;
    if (error != Py_None && !PyUnicode_Check(error)) {
        bglpy_wrong_type(error, "exited(): error", "a str or None");
        return NULL;
    }
    bgl_service *svc = find(self, name);
    if (!svc)
        return NULL;
    /* Any text will do: refusing it would lose the end of the run. */
    PyObject *text = error == Py_None ? NULL : bglpy_text(error);
    if (error != Py_None && !text)
        return NULL;
    int r = bgl_service_exited(svc, failed, text ? PyBytes_AsString(text) : NULL);
    Py_XDECREF(text);
    return PyLong_FromLong(r);
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
        return text_of(s);
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
        set_item(d, "tasks_abandoned", PyLong_FromUnsignedLong(info.tasks_abandoned)) ||
        set_item(d, "abandoned", PyBool_FromLong(info.abandoned)) ||
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
        return raise_query(self, n, owner, "bgl_services_active");
    return PyLong_FromLong(n);
}

/* stop_bound(owner=None, timeout=None) -> float: the longest a stop started
 * now can take, in seconds (bgl_services_stop_bound()). */
static PyObject *svcs_stop_bound(bglpy_services *self, PyObject *args, PyObject *kwargs)
{
    PyObject *owner_obj = Py_None, *timeout = Py_None;
    static char *kwlist[] = {"owner", "timeout", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:stop_bound", kwlist, &owner_obj,
                                     &timeout))
        return NULL;
    const char *owner;
    int64_t timeout_ns;
    uint64_t bound;
    if (bglpy_str_arg(owner_obj, "owner", 1, &owner) < 0 ||
        bglpy_seconds(timeout, "timeout", 1, &timeout_ns) < 0 || check_open(self) < 0)
        return NULL;
    int r = bgl_services_stop_bound(self->mgr, owner, timeout_ns, &bound);
    if (r < 0)
        return raise_query(self, r, owner, "bgl_services_stop_bound");
    return PyFloat_FromDouble((double)bound / 1e9);
}

static PyObject *svcs_abandoned(bglpy_services *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner;
    if (owner_args(args, nargs, "abandoned", &owner) < 0 || check_open(self) < 0)
        return NULL;
    int n = bgl_services_abandoned(self->mgr, owner);
    if (n < 0)
        return raise_query(self, n, owner, "bgl_services_abandoned");
    return PyLong_FromLong(n);
}

static PyObject *svcs_exit_code(bglpy_services *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    return PyLong_FromLong(bgl_services_exit_code(self->mgr));
}

/* ready() -> bool: bgl_services_ready(), every wanted service running. */
static PyObject *svcs_ready_all(bglpy_services *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    return PyBool_FromLong(bgl_services_ready(self->mgr) == 1);
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
    if (enable < 0 || check_live(self) < 0)
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
    PyObject *name, *obj, *label_obj;
    if (!PyArg_ParseTuple(args, "OOU:push", &name, &obj, &label_obj))
        return NULL;
    bgl_service *svc = find_live(self, name);
    if (!svc)
        return NULL;
    if (!self->hooks->fn[HOOK_CLOSE]) {
        PyErr_SetString(PyExc_RuntimeError, "push(): set_hooks() was not called");
        return NULL;
    }
    /* The label only names the object in reports: any text will do. */
    PyObject *label = bglpy_text(label_obj);
    if (!label)
        return NULL;
    int r = bglpy_resource_push(bglpy_type_state(Py_TYPE(self)), bgl_service_resources(svc),
                                PyBytes_AsString(label), obj, self->hooks->fn[HOOK_CLOSE],
                                self->core);
    Py_DECREF(label);
    if (r < 0)
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
    PyObject *errors = str_or_none(rep.errors);
    if (!errors)
        return NULL;
    return Py_BuildValue("{s:n,s:n,s:n,s:N}", "closed", (Py_ssize_t)rep.closed, "failed",
                         (Py_ssize_t)rep.failed, "timed_out", (Py_ssize_t)rep.timed_out,
                         "errors", errors);
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
    {"stop_bound", METH(svcs_stop_bound, METH_VARARGS | METH_KEYWORDS),
     "stop_bound(owner=None, timeout=None) -> float: the longest a stop started now can take "
     "(seconds)."},
    {"abandoned", METH(svcs_abandoned, METH_FASTCALL),
     "abandoned(owner=None) -> int: services and tasks that stops gave up on."},
    {"exit_code", METH(svcs_exit_code, METH_NOARGS),
     "exit_code() -> 1 if a service failed for good, else 0."},
    {"all_ready", METH(svcs_ready_all, METH_NOARGS),
     "all_ready() -> bool: at least one service is wanted and every wanted one is running."},
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
