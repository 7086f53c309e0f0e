/* module.c - bgloop._bgloop: the module object, its state and the helpers
 * every part shares (see bglpy.h for the conventions).
 *
 * To add a part, add its source file to `bgloop_py_sources` in
 * bindings/python/meson.build and its init function to `parts` below.
 */
#include "bglpy.h"

#include <errno.h>
#include <math.h>

#include "bgloop/common.h"
#include "bgloop/loop.h"

/* ---- shared helpers ------------------------------------------------------- */

PyObject *bglpy_raise_errno(int err, const char *what)
{
    int e = err < 0 ? -err : err;
    /* OSError(errno, text) picks the subclass (FileNotFoundError, ...) from
     * errno by itself. */
    PyObject *args = Py_BuildValue("(iss)", e, bgl_strerror(e), what);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

int bglpy_wrong_type(PyObject *o, const char *what, const char *expected)
{
    PyObject *tname = PyObject_GetAttrString((PyObject *)Py_TYPE(o), "__name__");
    if (tname) {
        PyErr_Format(PyExc_TypeError, "%s must be %s, not %U", what, expected, tname);
        Py_DECREF(tname);
    }
    return -1;
}

PyObject *bglpy_text(PyObject *s)
{
    PyObject *nul = PyUnicode_FromStringAndSize("\0", 1), *esc = PyUnicode_FromString("\\x00");
    PyObject *clean = nul && esc ? PyUnicode_Replace(s, nul, esc, -1) : NULL;
    Py_XDECREF(nul);
    Py_XDECREF(esc);
    if (!clean)
        return NULL;
    PyObject *b = PyUnicode_AsEncodedString(clean, "utf-8", "backslashreplace");
    Py_DECREF(clean);
    return b;
}

int bglpy_seconds(PyObject *o, const char *what, int allow_none, int64_t *ns)
{
    if (o == Py_None && allow_none) {
        *ns = -1;
        return 0;
    }
    double d = -1.0;
    if (!PyBool_Check(o) && o != Py_None)
        d = PyFloat_AsDouble(o); /* int, float, __float__, __index__ */
    if (d == -1.0 && PyLong_Check(o) && PyErr_Occurred() &&
        PyErr_ExceptionMatches(PyExc_OverflowError)) {
        /* An int beyond a double is just a (very) large number of seconds. */
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        int neg = zero ? PyObject_RichCompareBool(o, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (neg < 0)
            return -1;
        d = neg ? -HUGE_VAL : HUGE_VAL;
    }
    if (d == -1.0 && (PyBool_Check(o) || o == Py_None || PyErr_Occurred())) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError))
            return -1; /* OverflowError of a huge int, an error of __float__ */
        PyErr_Clear();
        bglpy_wrong_type(o, what, allow_none ? "a number of seconds or None"
                                             : "a number of seconds");
        return -1;
    }
    if (isnan(d)) {
        PyErr_Format(PyExc_ValueError, "%s must not be NaN", what);
        return -1;
    }
    if (d < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative (got %R)", what, o);
        return -1;
    }
    if (d >= 9e9) { /* ~285 years: as good as forever */
        if (!allow_none) {
            PyErr_Format(PyExc_ValueError, "%s must be a finite number of seconds (got %R)",
                         what, o);
            return -1;
        }
        *ns = -1;
        return 0;
    }
    *ns = (int64_t)(d * 1e9);
    return 0;
}

int bglpy_add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot, int expose)
{
    PyTypeObject *type = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (!type)
        return -1;
    *slot = type; /* the state's reference */
    return expose ? PyModule_AddType(module, type) : 0;
}

/* ---- module functions ----------------------------------------------------- */

static PyObject *mod_version(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyUnicode_FromString(bgl_version());
}

static PyObject *mod_backend(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
#ifdef BGLPY_BACKEND
    return PyUnicode_FromString(BGLPY_BACKEND);
#else
    bgl_loop *loop;
    int r = bgl_loop_new(&loop);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_loop_new");
    /* Only the poll backend has no single pollable descriptor. */
    int fd = bgl_loop_get_fd(loop);
    bgl_loop_free(loop);
    return PyUnicode_FromString(fd == -EOPNOTSUPP ? "poll" : "epoll");
#endif
}

static PyObject *mod_strerror(PyObject *module, PyObject *arg)
{
    (void)module;
    long err = PyLong_AsLong(arg);
    if (err == -1 && PyErr_Occurred())
        return NULL;
    if (err < -100000 || err > 100000) {
        PyErr_SetString(PyExc_ValueError, "strerror(): err is not an errno value");
        return NULL;
    }
    return PyUnicode_FromString(bgl_strerror((int)err));
}

static PyMethodDef module_methods[] = {
    {"version", mod_version, METH_NOARGS,
     "version() -> str: the version of bgloop (meson.build's project version)."},
    {"backend", mod_backend, METH_NOARGS,
     "backend() -> str: libbgloop's I/O backend in this build, \"epoll\" or \"poll\" "
     "(Windows: \"afd\" or \"poll\")."},
    {"strerror", mod_strerror, METH_O, "strerror(err) -> str: text of a (negative) errno."},
    {NULL, NULL, 0, NULL},
};

/* ---- state and initialisation --------------------------------------------- */

static int (*const parts[])(PyObject *module, bglpy_state *st) = {
    bglpy_core_init,
    bglpy_handle_init,
    bglpy_services_init,
    bglpy_services_signal_init,
    bglpy_services_tasks_init,
    bglpy_notify_init,
    bglpy_lag_init,
    bglpy_transport_init,
    NULL,
};

static int module_exec(PyObject *module)
{
    bglpy_state *st = bglpy_module_state(module);
    bglpy_list_init(&st->pending_free);
#define BGLPY_X(name)                                                           \
    if (!(st->str##name = PyUnicode_InternFromString(#name)))                 \
        return -1;
    BGLPY_NAMES(BGLPY_X)
#undef BGLPY_X
    for (size_t i = 0; parts[i]; i++)
        if (parts[i](module, st) < 0)
            return -1;
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    bglpy_state *st = bglpy_module_state(module);
    if (!st)
        return 0;
#define BGLPY_X(name) Py_VISIT(st->name);
    BGLPY_TYPES(BGLPY_X)
#undef BGLPY_X
    Py_VISIT(st->context_run);
    Py_VISIT(st->copy_context);
    Py_VISIT(st->extract_stack);
    Py_VISIT(st->format_cb);
    Py_VISIT(st->srp_type);
    Py_VISIT(st->sr_type);
    Py_VISIT(st->srp_data_received);
    Py_VISIT(st->sr_feed_data);
    Py_VISIT(st->sr_wakeup_waiter);
    Py_VISIT(st->future_type);
    Py_VISIT(st->monotonic);
    return 0;
}

static int module_clear(PyObject *module)
{
    bglpy_state *st = bglpy_module_state(module);
    if (!st)
        return 0;
#define BGLPY_X(name) Py_CLEAR(st->name);
    BGLPY_TYPES(BGLPY_X)
#undef BGLPY_X
    Py_CLEAR(st->context_run);
    Py_CLEAR(st->str_ctx_run);
    Py_CLEAR(st->copy_context);
    Py_CLEAR(st->extract_stack);
    Py_CLEAR(st->format_cb);
    Py_CLEAR(st->srp_type);
    Py_CLEAR(st->sr_type);
    Py_CLEAR(st->srp_data_received);
    Py_CLEAR(st->sr_feed_data);
    Py_CLEAR(st->sr_wakeup_waiter);
    Py_CLEAR(st->future_type);
    Py_CLEAR(st->monotonic);
    st->streams_state = 0;
#define BGLPY_X(name) Py_CLEAR(st->str##name);
    BGLPY_NAMES(BGLPY_X)
#undef BGLPY_X
    return 0;
}

static void module_free(void *module)
{
    module_clear(module);
    bglpy_state *st = bglpy_module_state(module);
    if (st && st->pending_free.next)
        bglpy_pending_free_all(st);
    if (st) {
        free(st->rbuf);
        st->rbuf = NULL;
    }
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "bgloop._bgloop",
    "The C core of bgloop: libbgloop's loop wrapped for asyncio.",
    sizeof(bglpy_state),
    module_methods,
    module_slots,
    module_traverse,
    module_clear,
    module_free,
};

PyMODINIT_FUNC PyInit__bgloop(void)
{
    return PyModuleDef_Init(&module_def);
}
