/* tasks.c - bgloop._bgloop.Tasks: asyncio tasks in libbgloop's task registry
 * (bgloop/task.h).
 *
 * Every task created inside a service is entered under the service's owner
 * with the service's name.  Given to a service manager (Services(core,
 * tasks)), the registry is how the manager counts what is left, cancels a
 * service's tasks when its run ends and an owner's leftovers when it stops.
 * An entry holds a strong reference to its asyncio task; its cancel hook is
 * task.cancel(); a done callback added to the task finishes the entry (done
 * or cancelled) and removes it from the registry.
 */
#include "services.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    bgl_tasks *reg;
} bglpy_tasks;

/* The done callback of one asyncio task: finishes and frees its entry. */
typedef struct {
    PyObject_HEAD
    bgl_task *entry;     /* NULL once finished */
    PyObject *tasks;     /* the Tasks object: keeps the registry alive */
} bglpy_finish;

/* Called by the registry (a manager cancelling a service's or an owner's
 * tasks, from a loop callback, or Tasks.cancel()). */
static void entry_cancel(bgl_task *entry, void *task)
{
    (void)entry;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod((PyObject *)task, "cancel", NULL);
    if (r)
        Py_DECREF(r);
    else
        PyErr_WriteUnraisable((PyObject *)task);
    PyGILState_Release(g);
}

/* Finish and free an entry; drop its reference to the task. */
static void entry_finish(bgl_task *entry, bgl_task_state state)
{
    PyObject *task = bgl_task_userdata(entry);
    bgl_task_finish(entry, state, NULL);
    bgl_task_free(entry);
    Py_XDECREF(task);
}

static PyObject *finish_call(bglpy_finish *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fut;
    if (kwargs && PyDict_Size(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "finish(task) takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:finish", &fut))
        return NULL;
    if (!self->entry)
        Py_RETURN_NONE;
    /* Only cancelled-or-not: asking for the exception would mark it as
     * retrieved and silence asyncio's "exception was never retrieved". */
    PyObject *c = PyObject_CallMethod(fut, "cancelled", NULL);
    if (!c)
        return NULL;
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (cancelled < 0)
        return NULL;
    bgl_task *entry = self->entry;
    self->entry = NULL;
    entry_finish(entry, cancelled ? BGL_TASK_CANCELLED : BGL_TASK_DONE);
    Py_RETURN_NONE;
}

static void finish_dealloc(bglpy_finish *self)
{
    /* The task went away without running its done callbacks (its loop was
     * closed): the entry must not outlive it. */
    if (self->entry)
        entry_finish(self->entry, BGL_TASK_CANCELLED);
    Py_XDECREF(self->tasks);
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyType_Slot finish_slots[] = {
    {Py_tp_call, finish_call},
    {Py_tp_dealloc, finish_dealloc},
    {Py_tp_doc, "Done callback of a registered task: finishes its registry entry."},
    {0, NULL},
};

static PyType_Spec finish_spec = {
    .name = "bgloop._bgloop.TaskFinish",
    .basicsize = sizeof(bglpy_finish),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = finish_slots,
};

/* ---- Tasks ---------------------------------------------------------------- */

static PyObject *tasks_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_Size(args) || (kwargs && PyDict_Size(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "Tasks() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_tasks *self = (bglpy_tasks *)alloc(type, 0);
    if (!self)
        return NULL;
    int r = bgl_tasks_new(&self->reg);
    if (r < 0) {
        Py_DECREF(self);
        return bglpy_raise_errno(r, "bgl_tasks_new");
    }
    return (PyObject *)self;
}

static void tasks_dealloc(bglpy_tasks *self)
{
    if (self->reg) {
        /* Every done callback holds a reference to us, so no entry is still
         * waiting for one; any left would only hold a task reference. */
        int n = bgl_tasks_list(self->reg, NULL, NULL, 0);
        bgl_task **list = n > 0 ? calloc((size_t)n, sizeof *list) : NULL;
        if (list) {
            n = bgl_tasks_list(self->reg, NULL, list, (size_t)n);
            for (int i = 0; i < n; i++)
                Py_XDECREF((PyObject *)bgl_task_userdata(list[i]));
            free(list);
        }
        bgl_tasks_free(self->reg);
    }
    PyTypeObject *tp = Py_TYPE(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

/* add(owner, name, task): register a running asyncio task. */
static PyObject *tasks_add(bglpy_tasks *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner, *name;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "add(owner, name, task) takes 3 arguments");
        return NULL;
    }
    if (bglpy_str_arg(args[0], "owner", 0, &owner) < 0 ||
        bglpy_str_arg(args[1], "name", 0, &name) < 0)
        return NULL;
    PyObject *task = args[2];
    PyObject *adder = PyObject_GetAttrString(task, "add_done_callback");
    if (!adder) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            bglpy_wrong_type(task, "add(): task", "an asyncio task or future");
        }
        return NULL;
    }
    Py_DECREF(adder);
    bglpy_state *st = bglpy_type_state(Py_TYPE(self));
    bglpy_finish *fin = PyObject_New(bglpy_finish, st->TaskFinish);
    if (!fin)
        return NULL;
    fin->entry = NULL;
    fin->tasks = (PyObject *)self;
    Py_INCREF(self);
    bgl_task *entry;
    int r = bgl_task_new(self->reg, owner, name, entry_cancel, task, &entry);
    if (r < 0) {
        Py_DECREF(fin);
        return bglpy_raise_errno(r, "bgl_task_new");
    }
    Py_INCREF(task);
    bgl_task_set_running(entry);
    fin->entry = entry;
    PyObject *res = PyObject_CallMethod(task, "add_done_callback", "O", (PyObject *)fin);
    Py_DECREF(fin); /* the task holds it now, or it finishes the entry on dealloc */
    if (!res)
        return NULL;
    Py_DECREF(res);
    Py_RETURN_NONE;
}

/* Optional (owner=None, name=None) positional arguments. */
static int owner_name_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t max,
                           const char *fn, const char **owner, const char **name)
{
    *owner = *name = NULL;
    if (nargs > max) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments", fn, max);
        return -1;
    }
    if (nargs > 0 && bglpy_str_arg(args[0], "owner", 1, owner) < 0)
        return -1;
    if (nargs > 1 && bglpy_str_arg(args[1], "name", 1, name) < 0)
        return -1;
    return 0;
}

/* tasks(owner=None, name=None) -> list of the active registered asyncio
 * tasks, in creation order. */
static PyObject *tasks_tasks(bglpy_tasks *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner, *name;
    if (owner_name_args(args, nargs, 2, "tasks", &owner, &name) < 0)
        return NULL;
    int total = bgl_tasks_list(self->reg, owner, NULL, 0);
    if (total < 0)
        return bglpy_raise_errno(total, "bgl_tasks_list");
    bgl_task **list = calloc((size_t)total + 1, sizeof *list);
    if (!list)
        return PyErr_NoMemory();
    total = bgl_tasks_list(self->reg, owner, list, (size_t)total);
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < total; i++) {
        int state = bgl_task_get_state(list[i]);
        if (state != BGL_TASK_PENDING && state != BGL_TASK_RUNNING)
            continue;
        if (name && strcmp(bgl_task_name(list[i]), name) != 0)
            continue;
        if (PyList_Append(out, (PyObject *)bgl_task_userdata(list[i])) < 0)
            Py_CLEAR(out);
    }
    free(list);
    return out;
}

/* active(owner=None) -> int: pending or running entries (O(1) for all). */
static PyObject *tasks_active(bglpy_tasks *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner, *name;
    if (owner_name_args(args, nargs, 1, "active", &owner, &name) < 0)
        return NULL;
    return PyLong_FromLong(bgl_tasks_active(self->reg, owner));
}

/* cancel(owner=None) -> int: ask every active task of owner to cancel. */
static PyObject *tasks_cancel(bglpy_tasks *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *owner, *name;
    if (owner_name_args(args, nargs, 1, "cancel", &owner, &name) < 0)
        return NULL;
    int r = bgl_tasks_cancel(self->reg, owner);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_tasks_cancel");
    return PyLong_FromLong(r);
}

#define FASTCALL(fn) (PyCFunction)(void (*)(void))(fn), METH_FASTCALL

static PyMethodDef tasks_methods[] = {
    {"add", FASTCALL(tasks_add), "add(owner, name, task): register an asyncio task."},
    {"tasks", FASTCALL(tasks_tasks),
     "tasks(owner=None, name=None) -> list: active registered tasks."},
    {"active", FASTCALL(tasks_active), "active(owner=None) -> int"},
    {"cancel", FASTCALL(tasks_cancel), "cancel(owner=None) -> int: cancel active tasks."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot tasks_slots[] = {
    {Py_tp_new, tasks_new},
    {Py_tp_dealloc, tasks_dealloc},
    {Py_tp_methods, tasks_methods},
    {Py_tp_doc, "Tasks(): libbgloop's task registry holding asyncio tasks by owner."},
    {0, NULL},
};

static PyType_Spec tasks_spec = {
    .name = "bgloop._bgloop.Tasks",
    .basicsize = sizeof(bglpy_tasks),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = tasks_slots,
};

bgl_tasks *bglpy_tasks_registry(bglpy_state *st, PyObject *obj)
{
    if (!obj || Py_TYPE(obj) != st->Tasks)
        return NULL;
    return ((bglpy_tasks *)obj)->reg;
}

int bglpy_services_tasks_init(PyObject *module, bglpy_state *st)
{
    if (bglpy_add_type(module, &tasks_spec, &st->Tasks, 1) < 0)
        return -1;
    return bglpy_add_type(module, &finish_spec, &st->TaskFinish, 0);
}
