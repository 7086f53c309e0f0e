/* notify.c - bgloop._bgloop.Notifier: libbgloop's systemd notifier
 * (bgloop/notify.h) following a Services manager.
 *
 * Notifier(services) reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
 * and attaches to the manager: READY/STATUS/RELOADING/STOPPING, the stop
 * extension and the watchdog pings are all libbgloop's.  A bad environment
 * raises OSError (the errno subclass) carrying libbgloop's text, which
 * names the variable and its value.
 */
#include "services.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bgloop/notify.h"

typedef struct {
    PyObject_HEAD
    bgl_notify *n;       /* NULL once closed */
    PyObject *services;  /* the Services followed: outlives the notifier */
    PyObject *note;      /* str: what the environment left out, or "" */
} bglpy_notifier;

static PyObject *raise_text(int err, const char *text)
{
    int e = err < 0 ? -err : err;
    PyObject *args = Py_BuildValue("(is)", e, text);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *notifier_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    bglpy_state *st = bglpy_type_state(type);
    PyObject *services;
    static char *kwlist[] = {"services", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Notifier", kwlist, &services))
        return NULL;
    bgl_loop *loop = NULL;
    bgl_services *mgr = bglpy_services_manager(st, services, &loop);
    if (!mgr) {
        bglpy_wrong_type(services, "Notifier(): services", "a Services object");
        return NULL;
    }
    if (!loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_notifier *self = (bglpy_notifier *)alloc(type, 0);
    if (!self)
        return NULL;
    Py_INCREF(services);
    self->services = services;
    char why[256];
    int r = bgl_notify_new_from_env(loop, &self->n, why, sizeof why);
    if (r == 0 && (r = bgl_notify_attach(self->n, mgr)) < 0)
        snprintf(why, sizeof why, "the manager already has a notifier");
    if (r < 0) {
        Py_DECREF(self);
        return raise_text(r, why);
    }
    if (!(self->note = PyUnicode_DecodeUTF8(why, (Py_ssize_t)strlen(why), "replace"))) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void notifier_free_c(bglpy_notifier *self)
{
    if (self->n) {
        bgl_notify_free(self->n);
        self->n = NULL;
    }
}

static void notifier_dealloc(bglpy_notifier *self)
{
    notifier_free_c(self);
    Py_CLEAR(self->services);
    Py_CLEAR(self->note);
    PyTypeObject *tp = Py_TYPE(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

static int check_open(bglpy_notifier *self)
{
    if (!self->n) {
        PyErr_SetString(PyExc_RuntimeError, "the notifier is closed");
        return -1;
    }
    return 0;
}

static PyObject *notifier_close(bglpy_notifier *self, PyObject *unused)
{
    (void)unused;
    notifier_free_c(self);
    Py_RETURN_NONE;
}

/* send(message): one datagram; OSError when the receiver refuses it. */
static PyObject *notifier_send(bglpy_notifier *self, PyObject *arg)
{
    const char *text;
    if (check_open(self) < 0 || bglpy_str_arg(arg, "send(): message", 0, &text) < 0)
        return NULL;
    if (!*text) {
        PyErr_SetString(PyExc_ValueError, "send(): message must not be empty");
        return NULL;
    }
    int r = bgl_notify_send(self->n, text);
    if (r < 0)
        return bglpy_raise_errno(r, "Notifier.send()");
    Py_RETURN_NONE;
}

static PyObject *notifier_stats(bglpy_notifier *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    bgl_notify_stats s;
    bgl_notify_get_stats(self->n, &s);
    return Py_BuildValue("{sKsKsisKsKsOsO}", "sent", (unsigned long long)s.sent, "failed",
                         (unsigned long long)s.failed, "last_error", -s.last_error,
                         "watchdog_usec", (unsigned long long)s.watchdog_usec, "pings",
                         (unsigned long long)s.pings, "ready", s.ready ? Py_True : Py_False,
                         "stopping", s.stopping ? Py_True : Py_False);
}

static PyObject *notifier_get_address(bglpy_notifier *self, void *closure)
{
    (void)closure;
    if (check_open(self) < 0)
        return NULL;
    return PyUnicode_DecodeUTF8(bgl_notify_address(self->n),
                                (Py_ssize_t)strlen(bgl_notify_address(self->n)), "replace");
}

static PyObject *notifier_get_note(bglpy_notifier *self, void *closure)
{
    (void)closure;
    Py_INCREF(self->note);
    return self->note;
}

static PyObject *notifier_get_closed(bglpy_notifier *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->n == NULL);
}

static PyMethodDef notifier_methods[] = {
    {"close", (PyCFunction)notifier_close, METH_NOARGS,
     "close(): detach from the manager, stop the pings, close the socket."},
    {"send", (PyCFunction)notifier_send, METH_O,
     "send(message): send KEY=VALUE lines as one datagram."},
    {"stats", (PyCFunction)notifier_stats, METH_NOARGS,
     "stats() -> dict: sent, failed, last_error (errno), watchdog_usec, pings, ready, "
     "stopping."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef notifier_getset[] = {
    {"address", (getter)notifier_get_address, NULL, "$NOTIFY_SOCKET as read.", NULL},
    {"note", (getter)notifier_get_note, NULL,
     "What the environment left out (e.g. WATCHDOG_PID of another process), or \"\".",
     NULL},
    {"closed", (getter)notifier_get_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot notifier_slots[] = {
    {Py_tp_new, notifier_new},
    {Py_tp_dealloc, notifier_dealloc},
    {Py_tp_methods, notifier_methods},
    {Py_tp_getset, notifier_getset},
    {Py_tp_doc, "Notifier(services): systemd notifications of a Services manager, from "
                "$NOTIFY_SOCKET/$WATCHDOG_USEC/$WATCHDOG_PID."},
    {0, NULL},
};

static PyType_Spec notifier_spec = {
    .name = "bgloop._bgloop.Notifier",
    .basicsize = sizeof(bglpy_notifier),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = notifier_slots,
};

int bglpy_notify_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &notifier_spec, &st->Notifier, 1);
}
