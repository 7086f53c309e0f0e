/* watcher.c - bgloop._bgloop.Watcher: one bgl_io per watched descriptor.
 *
 * The Python selector stand-in (bgloop.loop._Selector) creates one Watcher
 * per registered fd; `data` is the selector key's data, which asyncio sets to
 * (reader Handle or None, writer Handle or None).  When the fd is ready the C
 * callback runs those Handles directly - the same thing asyncio's
 * _process_events() + _run_once() do, without the Python round trip.
 * Readiness is interpreted like selectors.EpollSelector: an error or hangup
 * counts as both readable and writable, filtered by the interest.
 */
#include "core.h"

#include <limits.h>

/* An int of EVENT_READ | EVENT_WRITE bits, as selectors' register() takes
 * it; anything else (2**64 included) is "Invalid events", never truncated. */
static int parse_events(PyObject *o, unsigned *events)
{
    if (!PyLong_Check(o))
        return bglpy_wrong_type(o, "events", "an int");
    int overflow;
    long v = PyLong_AsLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || (v & ~(long)(BGL_IO_READ | BGL_IO_WRITE))) {
        PyErr_Format(PyExc_ValueError, "Invalid events: %R", o);
        return -1;
    }
    *events = (unsigned)v;
    return 0;
}

static void watcher_release(bglpy_watcher *w)
{
    if (!w->io)
        return;
    bgl_io_free(w->io);
    w->io = NULL;
    bglpy_list_unlink(&w->link);
}

/* Run the reader or writer Handle; a cancelled one is removed the way
 * asyncio's _process_events() does. */
static void io_handle(bglpy_core *core, bgl_fd fd, PyObject *handle, PyObject *remover)
{
    if (handle == Py_None || core->exc_type)
        return;
    PyObject *c = PyObject_GetAttr(handle, core->st->str_cancelled);
    if (!c) {
        bglpy_stash_exception(core);
        return;
    }
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (!cancelled) {
        bglpy_call_handle(core, handle);
        return;
    }
    if (!core->owner)
        return;
    PyObject *ofd = PyLong_FromLong((long)fd);
    PyObject *r = ofd ? PyObject_CallMethodObjArgs(core->owner, remover, ofd, NULL) : NULL;
    Py_XDECREF(ofd);
    if (r)
        Py_DECREF(r);
    else
        bglpy_stash_exception(core);
}

static void io_fire(bgl_io *io, bgl_fd fd, unsigned revents, void *userdata)
{
    (void)io;
    bglpy_watcher *w = userdata;
    bglpy_core *core = w->core;
    if (core->exc_type)
        return; /* level-triggered: it will be reported again */
    unsigned ev = revents & (BGL_IO_READ | BGL_IO_WRITE);
    if (revents & (BGL_IO_ERROR | BGL_IO_HUP))
        ev |= BGL_IO_READ | BGL_IO_WRITE;
    ev &= w->events;
    PyObject *data = w->data;
    if (!ev || !data || !PyTuple_Check(data) || PyTuple_Size(data) != 2)
        return;
    /* The reader may close the watcher (and drop its data): hold both. */
    Py_INCREF(w);
    Py_INCREF(data);
    if (ev & BGL_IO_READ)
        io_handle(core, fd, PyTuple_GetItem(data, 0), core->st->str_remove_reader);
    if ((ev & BGL_IO_WRITE) && w->io)
        io_handle(core, fd, PyTuple_GetItem(data, 1), core->st->str_remove_writer);
    Py_DECREF(data);
    Py_DECREF(w);
}

PyObject *bglpy_core_watch(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "watch() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    int overflow;
    long lfd = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (lfd == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || lfd > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "watch(): fd out of range");
        return NULL;
    }
    if (lfd < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", lfd);
        return NULL;
    }
    /* Windows: a SOCKET, as socket.fileno() gives it (socket handles fit in
     * 32 bits); the backend refuses anything else with EBADF. */
    bgl_fd fd = (bgl_fd)lfd;
    unsigned events;
    PyObject *data = args[2];
    if (parse_events(args[1], &events) < 0 || bglpy_check_open(core) < 0)
        return NULL;
    PyTypeObject *type = core->st->Watcher;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_watcher *w = (bglpy_watcher *)alloc(type, 0);
    if (!w)
        return NULL;
    Py_INCREF(core);
    w->core = core;
    w->fd = fd;
    int r = bgl_io_new(core->loop, fd, events, io_fire, w, &w->io);
    if (r < 0) {
        w->io = NULL;
        Py_DECREF(w);
        return bglpy_raise_errno(r, "bgl_io_new");
    }
    w->events = events;
    Py_INCREF(data);
    w->data = data;
    bglpy_list_push(&core->watchers, &w->link);
    return (PyObject *)w;
}

void bglpy_watchers_release_all(bglpy_core *core)
{
    bglpy_link *l;
    while ((l = bglpy_list_first(&core->watchers)))
        watcher_release(bglpy_entry(l, bglpy_watcher, link));
}

static PyObject *watcher_modify(bglpy_watcher *self, PyObject *args)
{
    PyObject *events_obj, *data;
    unsigned events;
    if (!PyArg_ParseTuple(args, "OO:modify", &events_obj, &data) ||
        parse_events(events_obj, &events) < 0)
        return NULL;
    if (!self->io) {
        PyErr_SetString(PyExc_RuntimeError, "watcher is closed");
        return NULL;
    }
    if (events != self->events) {
        int r = bgl_io_set_events(self->io, events);
        if (r < 0)
            return bglpy_raise_errno(r, "bgl_io_set_events");
        self->events = events;
    }
    PyObject *old = self->data;
    Py_INCREF(data);
    self->data = data;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *watcher_close(bglpy_watcher *self, PyObject *unused)
{
    (void)unused;
    watcher_release(self);
    Py_CLEAR(self->data);
    Py_RETURN_NONE;
}

static PyObject *watcher_get_fd(bglpy_watcher *self, void *c)
{
    (void)c;
    return PyLong_FromLong((long)self->fd);
}

static PyObject *watcher_get_events(bglpy_watcher *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(self->io ? self->events : 0);
}

static PyMethodDef watcher_methods[] = {
    {"modify", (PyCFunction)watcher_modify, METH_VARARGS, "modify(events, data)"},
    {"close", (PyCFunction)watcher_close, METH_NOARGS, "Stop watching (the fd stays open)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef watcher_getset[] = {
    {"fd", (getter)watcher_get_fd, NULL, NULL, NULL},
    {"events", (getter)watcher_get_events, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int watcher_traverse(bglpy_watcher *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->data);
    Py_VISIT((PyObject *)self->core);
    return 0;
}

static int watcher_clear(bglpy_watcher *self)
{
    Py_CLEAR(self->data);
    return 0;
}

static void watcher_dealloc(bglpy_watcher *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    watcher_release(self);
    Py_CLEAR(self->data);
    Py_CLEAR(self->core);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyObject *watcher_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError, "Watcher objects are created by Core.watch()");
    return NULL;
}

static PyType_Slot watcher_slots[] = {
    {Py_tp_new, watcher_new},
    {Py_tp_dealloc, watcher_dealloc},
    {Py_tp_traverse, watcher_traverse},
    {Py_tp_clear, watcher_clear},
    {Py_tp_methods, watcher_methods},
    {Py_tp_getset, watcher_getset},
    {0, NULL},
};

static PyType_Spec watcher_spec = {
    "bgloop._bgloop.Watcher",
    sizeof(bglpy_watcher),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    watcher_slots,
};

int bglpy_watcher_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &watcher_spec, &st->Watcher, 1);
}
