/* sigaction.c - save and restore a signal's exact C disposition.
 *
 * bgloop.serve() installs SIGINT/SIGTERM handlers even where the host has
 * its own.  Python's signal.getsignal() returns None for a handler installed
 * outside Python (Blender's SIGINT handler), and signal.signal() cannot put
 * such a handler back.  These two functions keep the whole struct sigaction
 * as opaque bytes so serve() can restore the host's handler exactly.
 */
#include "bglpy.h"

/* Windows has no sigaction(): serve() takes the console's events through a
 * signal watcher there (signal_watcher.c) and changes no disposition. */
#ifndef _WIN32

#include <errno.h>
#include <signal.h>
#include <string.h>

static int check_signo(PyObject *arg, int *signo)
{
    if (!PyLong_Check(arg) || PyBool_Check(arg))
        return bglpy_wrong_type(arg, "signal number", "an int");
    int overflow;
    long v = PyLong_AsLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 1 || v >= NSIG || v == SIGKILL || v == SIGSTOP) {
        PyErr_Format(PyExc_ValueError, "signal number %R is out of range or cannot be caught",
                     arg);
        return -1;
    }
    *signo = (int)v;
    return 0;
}

static PyObject *sigaction_save(PyObject *module, PyObject *arg)
{
    (void)module;
    int signo;
    if (check_signo(arg, &signo) < 0)
        return NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (sigaction(signo, NULL, &sa) < 0)
        return bglpy_raise_errno(-errno, "sigaction");
    return PyBytes_FromStringAndSize((const char *)&sa, sizeof sa);
}

static PyObject *sigaction_restore(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_sigaction_restore(signo, saved) takes 2 arguments");
        return NULL;
    }
    int signo;
    if (check_signo(args[0], &signo) < 0)
        return NULL;
    char *buf;
    Py_ssize_t len;
    if (!PyBytes_Check(args[1]) || PyBytes_AsStringAndSize(args[1], &buf, &len) < 0 ||
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

static PyMethodDef sigaction_methods[] = {
    {"_sigaction_save", sigaction_save, METH_O,
     "_sigaction_save(signo) -> bytes: the signal's current disposition (opaque)."},
    {"_sigaction_restore", (PyCFunction)(void (*)(void))sigaction_restore, METH_FASTCALL,
     "_sigaction_restore(signo, saved): reinstate a disposition from _sigaction_save()."},
    {NULL, NULL, 0, NULL},
};

#endif /* !_WIN32 */

int bglpy_services_signal_init(PyObject *module, bglpy_state *st)
{
    (void)st;
#ifdef _WIN32
    (void)module;
    return 0;
#else
    return PyModule_AddFunctions(module, sigaction_methods);
#endif
}
