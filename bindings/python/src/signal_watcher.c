/* signal_watcher.c - bgloop._bgloop.SignalWatcher: one bgl_signal whose
 * deliveries run an asyncio Handle on the loop.
 *
 * Core.watch_signal(signo, handle) has libbgloop deliver `signo` as a loop
 * callback that runs `handle` the way a reader's Handle runs (watcher.c);
 * close() stops the delivery and puts the previous disposition back.  On
 * Windows this is how a program hears the console: Ctrl+C (SIGINT),
 * Ctrl+Break (SIGBREAK) and the console's close, logoff or shutdown
 * (SIGTERM), which bgloop.serve() stops on; any other number is refused
 * there (ENOTSUP).  On POSIX it is libbgloop's signal source with the
 * caveats of bgl_signal_new() (loop.h): bgloop.Loop's own
 * add_signal_handler() is asyncio's, not this.
 */
#include "core.h"

#include <limits.h>

typedef struct {
    PyObject_HEAD
    bgl_signal *sig;            /* NULL once closed */
    bglpy_core *core;           /* strong */
    PyObject *handle;           /* the asyncio Handle run on delivery */
    int signo;
    bglpy_link link;            /* core->signals while open */
} bglpy_sigwatch;

static void sigwatch_release(bglpy_sigwatch *w)
{
    if (!w->sig)
        return;
    bgl_signal_free(w->sig);
    w->sig = NULL;
    bglpy_list_unlink(&w->link);
}

static void sigwatch_fire(bgl_signal *sig, int signo, void *userdata)
{
    (void)sig;
    (void)signo;
    bglpy_sigwatch *w = userdata;
    if (!w->handle)
        return;
    /* The Handle may close the watcher (and drop itself): hold both. */
    PyObject *handle = w->handle;
    Py_INCREF(w);
    Py_INCREF(handle);
    bglpy_run_handle(w->core, handle);
    Py_DECREF(handle);
    Py_DECREF(w);
}

PyObject *bglpy_core_watch_signal(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "watch_signal() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyLong_Check(args[0]) || PyBool_Check(args[0])) {
        bglpy_wrong_type(args[0], "signal number", "an int");
        return NULL;
    }
    int overflow;
    long signo = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (signo == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || signo < 1 || signo > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "signal number %R is out of range", args[0]);
        return NULL;
    }
    if (bglpy_check_open(core) < 0)
        return NULL;
    PyTypeObject *type = core->st->SignalWatcher;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_sigwatch *w = (bglpy_sigwatch *)alloc(type, 0);
    if (!w)
        return NULL;
    Py_INCREF(core);
    w->core = core;
    w->signo = (int)signo;
    int r = bgl_signal_new(core->loop, (int)signo, sigwatch_fire, w, &w->sig);
    if (r < 0) {
        w->sig = NULL;
        Py_DECREF(w);
        return bglpy_raise_errno(r, "bgl_signal_new");
    }
    Py_INCREF(args[1]);
    w->handle = args[1];
    bglpy_list_push(&core->signals, &w->link);
    return (PyObject *)w;
}

void bglpy_signal_watchers_release_all(bglpy_core *core)
{
    bglpy_link *l;
    while ((l = bglpy_list_first(&core->signals)))
        sigwatch_release(bglpy_entry(l, bglpy_sigwatch, link));
}

static PyObject *sigwatch_close(bglpy_sigwatch *self, PyObject *unused)
{
    (void)unused;
    sigwatch_release(self);
    Py_CLEAR(self->handle);
    Py_RETURN_NONE;
}

static PyObject *sigwatch_get_signo(bglpy_sigwatch *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->signo);
}

static PyObject *sigwatch_get_closed(bglpy_sigwatch *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->sig == NULL);
}

static PyMethodDef sigwatch_methods[] = {
    {"close", (PyCFunction)sigwatch_close, METH_NOARGS,
     "Stop delivering the signal; its previous disposition is back."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sigwatch_getset[] = {
    {"signo", (getter)sigwatch_get_signo, NULL, NULL, NULL},
    {"closed", (getter)sigwatch_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int sigwatch_traverse(bglpy_sigwatch *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->handle);
    Py_VISIT((PyObject *)self->core);
    return 0;
}

static int sigwatch_clear(bglpy_sigwatch *self)
{
    Py_CLEAR(self->handle);
    return 0;
}

static void sigwatch_dealloc(bglpy_sigwatch *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    sigwatch_release(self);
    Py_CLEAR(self->handle);
    Py_CLEAR(self->core);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyObject *sigwatch_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError, "SignalWatcher objects are created by Core.watch_signal()");
    return NULL;
}

static PyType_Slot sigwatch_slots[] = {
    {Py_tp_new, sigwatch_new},
    {Py_tp_dealloc, sigwatch_dealloc},
    {Py_tp_traverse, sigwatch_traverse},
    {Py_tp_clear, sigwatch_clear},
    {Py_tp_methods, sigwatch_methods},
    {Py_tp_getset, sigwatch_getset},
    {0, NULL},
};

static PyType_Spec sigwatch_spec = {
    "bgloop._bgloop.SignalWatcher",
    sizeof(bglpy_sigwatch),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    sigwatch_slots,
};

int bglpy_signal_watcher_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &sigwatch_spec, &st->SignalWatcher, 1);
}
