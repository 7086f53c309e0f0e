/* module.c - bgloop._bgloop: the module object and its initialisation.
 *
 * The module is initialised in one exec step that calls the init function of
 * every part (see bglpy.h).  To add a part, add a source file to
 * `bgloop_py_sources` in bindings/python/meson.build and one line to
 * `parts` below.
 */
#include "bglpy.h"

#include <errno.h>

#include "bgloop/common.h"

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

static PyObject *mod_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(bgl_version());
}

static PyObject *mod_strerror(PyObject *self, PyObject *arg)
{
    (void)self;
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
    {"version", mod_version, METH_NOARGS, "version() -> str: libbgloop's version."},
    {"strerror", mod_strerror, METH_O, "strerror(err) -> str: text of a (negative) errno."},
    {NULL, NULL, 0, NULL},
};

/* One init function per source file, called in this order; NULL ends it.
 * (pyservices: add bglpy_services_init here and declare it in bglpy.h.) */
static int (*const parts[])(PyObject *module) = {
    bglpy_core_init,
    bglpy_services_init,
    bglpy_services_signal_init,
    bglpy_services_tasks_init,
    NULL,
};

static int module_exec(PyObject *module)
{
    for (size_t i = 0; parts[i]; i++)
        if (parts[i](module) < 0)
            return -1;
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "bgloop._bgloop",
    "The C core of bgloop: libbgloop's loop wrapped for asyncio.",
    0,
    module_methods,
    module_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__bgloop(void)
{
    return PyModuleDef_Init(&module_def);
}
