/* resources.c - Python objects on libbgloop resource stacks.
 *
 * A pushed object is closed by the Python `closer(obj, done)` that was the
 * manager's close hook when it was pushed.  Closing may take a while (an
 * aclose() awaited in a task): the C stack is told BGL_RESOURCE_ASYNC and
 * `done` - a ResourceDone - reports the end, `done()` or `done(error)`,
 * exactly once.
 */
#include "services.h"
#include "core.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    bgl_resource *res;   /* NULL once reported */
} bglpy_done;

typedef struct {
    PyObject *obj;
    PyObject *closer;          /* the close hook at push time */
    PyObject *core;            /* the manager's Core (strong) */
    PyTypeObject *done_type;   /* st->ResourceDone, kept for the close */
} pushed;

static void report(bglpy_done *done, int err, const char *text)
{
    bgl_resource *token = done->res;
    done->res = NULL;
    bgl_resource_done(token, err, text);
}

static int resource_close(bgl_resource *res, void *object)
{
    pushed *p = object;
    PyGILState_STATE g = PyGILState_Ensure();
    bglpy_done *done = PyObject_New(bglpy_done, p->done_type);
    if (!done) {
        PyErr_Clear();
        PyGILState_Release(g);
        return -ENOMEM;
    }
    done->res = res;
    PyObject *r = PyObject_CallFunctionObjArgs(p->closer, p->obj, (PyObject *)done, NULL);
    bglpy_core *core = (bglpy_core *)p->core;
    if (r) {
        Py_DECREF(r);
    } else if (!PyErr_ExceptionMatches(PyExc_Exception) && core->loop) {
        /* KeyboardInterrupt, SystemExit: the close ends as failed. */
        if (done->res) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            report(done, -EIO, "close interrupted");
            PyErr_Restore(type, value, tb);
        }
        bglpy_hook_raised(core, p->closer);
    } else if (done->res) {
        /* The closer raised before reporting: report its error for it. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *str = value ? PyObject_Str(value) : NULL;
        PyObject *text = str ? bglpy_text(str) : NULL;
        const char *msg = text ? PyBytes_AsString(text) : NULL;
        Py_XDECREF(str);
        if (!msg)
            PyErr_Clear();
        report(done, -EIO, msg ? msg : "close raised");
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
    Py_DECREF(p->core);
    Py_DECREF(p->done_type);
    PyGILState_Release(g);
    free(p);
}

int bglpy_resource_push(bglpy_state *st, bgl_resources *rs, const char *label, PyObject *obj,
                        PyObject *closer, PyObject *core)
{
    pushed *p = malloc(sizeof *p);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(obj);
    Py_INCREF(closer);
    Py_INCREF(core);
    Py_INCREF(st->ResourceDone);
    p->obj = obj;
    p->closer = closer;
    p->core = core;
    p->done_type = st->ResourceDone;
    int r = bgl_resource_push(rs, label, p, resource_close, resource_release, NULL);
    if (r < 0) {
        Py_DECREF(obj);
        Py_DECREF(closer);
        Py_DECREF(core);
        Py_DECREF(st->ResourceDone);
        free(p);
        bglpy_raise_errno(r, "bgl_resource_push");
        return -1;
    }
    return 0;
}

/* done(error=None) -> bool: False if the end was reported already. */
static PyObject *done_call(bglpy_done *self, PyObject *args, PyObject *kwargs)
{
    PyObject *error = Py_None;
    static char *kwlist[] = {"error", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:done", kwlist, &error))
        return NULL;
    if (!self->res)
        Py_RETURN_FALSE;
    if (error == Py_None) {
        report(self, 0, NULL);
        Py_RETURN_TRUE;
    }
    PyObject *str = PyObject_Str(error);
    PyObject *text = str ? bglpy_text(str) : NULL;
    Py_XDECREF(str);
    if (text) {
        report(self, -EIO, PyBytes_AsString(text));
        Py_DECREF(text);
        Py_RETURN_TRUE;
    }
    /* An error whose str() raised still ends the close (reporting may run
     * the next close, so not with the exception set); then it is raised. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    report(self, -EIO, "close failed (its error could not be converted to text)");
    PyErr_Restore(type, value, tb);
    return NULL;
}

static void done_dealloc(bglpy_done *self)
{
    /* Dropped without reporting (its close task vanished): the stack must
     * still hear about it, or the entry would wait for its timeout. */
    if (self->res)
        report(self, -ECANCELED, "close never completed");
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_Free(self);
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
    .basicsize = sizeof(bglpy_done),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = done_slots,
};

int bglpy_resources_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &done_spec, &st->ResourceDone, 0);
}
