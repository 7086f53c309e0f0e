/* bglpy.h - shared declarations of the bgloop._bgloop extension.
 *
 * The extension is built against the stable ABI of Python 3.10
 * (Py_LIMITED_API is set by Meson), so only limited-API calls are allowed.
 * Each source file owns one part of the module and exports one
 * `int bglpy_<part>_init(PyObject *module)` that adds its types and functions
 * to the module; module.c calls them in order.  They return 0, or -1 with a
 * Python exception set.
 */
#ifndef BGLPY_H
#define BGLPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Raise OSError (or a subclass chosen from errno) for a negative errno
 * returned by libbgloop, naming what failed.  Always returns NULL. */
PyObject *bglpy_raise_errno(int err, const char *what);

/* Parts (one per source file). */
int bglpy_core_init(PyObject *module); /* core.c: Core, Timer, Watcher */
int bglpy_services_init(PyObject *module);        /* services.c: Services */
int bglpy_services_signal_init(PyObject *module); /* services_signal.c */
int bglpy_services_tasks_init(PyObject *module);  /* services_tasks.c: Tasks */

#endif /* BGLPY_H */
