/* services_signal.c - save and restore a signal's exact C disposition.
 *
 * bgloop.serve() installs SIGINT/SIGTERM handlers even where the host has
 * its own.  Python's signal.getsignal() returns None for a handler installed
 * outside Python (Blender's SIGINT handler), and signal.signal() cannot put
 * such a handler back.  These two functions keep the whole struct sigaction
 * as opaque bytes so serve() can restore the host's handler exactly.
 */
#include "bglpy.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static int check_signo(PyObject *arg, int *signo)
{
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 1 || v >= NSIG || v == SIGKILL || v == SIGSTOP) {
        PyErr_Format(PyExc_ValueError, "signal number %ld is out of range or cannot be caught", v);
        return -1;
    }
    *signo = (int)v;
    return 0;
}

static PyObject *sigaction_save(PyObject *self, PyObject *arg)
{
    (void)self;
    int signo;
    if (check_signo(arg, &signo) < 0)
        return NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (sigaction(signo, NULL, &sa) < 0)
        return bglpy_raise_errno(-errno, "sigaction");
    return PyBytes_FromStringAndSize((const char *)&sa, sizeof sa);
}

static PyObject *sigaction_restore(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *signo_obj, *saved;
    if (!PyArg_ParseTuple(args, "OO:_sigaction_restore", &signo_obj, &saved))
        return NULL;
    int signo;
    if (check_signo(signo_obj, &signo) < 0)
        return NULL;
    char *buf;
    Py_ssize_t len;
    if (!PyBytes_Check(saved) || PyBytes_AsStringAndSize(saved, &buf, &len) < 0 ||
        len != (Py_ssize_t)sizeof(struct sigaction)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError,
                        "_sigaction_restore(): expected the bytes returned by _sigaction_save()");
        return NULL;
    }
    struct sigaction sa;
    memcpy(&sa, buf, sizeof sa);
    if (sigaction(signo, &sa, NULL) < 0)
        return bglpy_raise_errno(-errno, "sigaction");
    Py_RETURN_NONE;
}

static PyMethodDef signal_methods[] = {
    {"_sigaction_save", sigaction_save, METH_O,
     "_sigaction_save(signo) -> bytes: the signal's current disposition (opaque)."},
    {"_sigaction_restore", sigaction_restore, METH_VARARGS,
     "_sigaction_restore(signo, saved): reinstate a disposition from _sigaction_save()."},
    {NULL, NULL, 0, NULL},
};

int bglpy_services_signal_init(PyObject *module)
{
    return PyModule_AddFunctions(module, signal_methods);
}
