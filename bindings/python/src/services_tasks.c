/* services_tasks.c - bgloop._bgloop.Tasks: asyncio tasks in libbgloop's task
 * registry (bgloop/task.h).
 *
 * Every task created inside a service is entered under the service's owner
 * with the service's name, so the registry can count what is left (cheaply,
 * for kick()/serve()), list an owner's or a service's tasks and cancel them.
 * The entry holds a strong reference to the asyncio task; its cancel hook is
 * task.cancel(); a done callback added to the task finishes the entry
 * (done or cancelled) and removes it from the registry.
 *
 * Entries are only touched with the GIL held: registration and the done
 * callback are Python calls; cancellation comes from Tasks.cancel().
 */
#include "bglpy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/task.h"

typedef struct {
    PyObject_HEAD
    bgl_tasks *reg;
} TasksObject;

/* The done callback of one asyncio task: finishes and frees its entry. */
typedef struct {
    PyObject_HEAD
    bgl_task *entry;     /* NULL once finished */
    PyObject *tasks;     /* the Tasks object: keeps the registry alive */
} FinishObject;

static PyTypeObject *TasksType;
static PyTypeObject *FinishType;

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

static PyObject *finish_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    FinishObject *self = (FinishObject *)op;
    PyObject *fut;
    if (kwargs || !PyArg_ParseTuple(args, "O:finish", &fut)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "finish(task) takes no keyword arguments");
        return NULL;
    }
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

static void finish_dealloc(PyObject *op)
{
    FinishObject *self = (FinishObject *)op;
    /* The task went away without running its done callbacks (its loop was
     * closed): the entry must not outlive it. */
    if (self->entry)
        entry_finish(self->entry, BGL_TASK_CANCELLED);
    Py_XDECREF(self->tasks);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_Free(op);
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
    .basicsize = sizeof(FinishObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = finish_slots,
};

/* ---- Tasks ---------------------------------------------------------------- */

static PyObject *tasks_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ":Tasks") || (kwargs && PyDict_Size(kwargs))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Tasks() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    TasksObject *self = (TasksObject *)alloc(type, 0);
    if (!self)
        return NULL;
    int r = bgl_tasks_new(&self->reg);
    if (r < 0) {
        Py_DECREF(self);
        return bglpy_raise_errno(r, "bgl_tasks_new");
    }
    return (PyObject *)self;
}

static void tasks_dealloc(PyObject *op)
{
    TasksObject *self = (TasksObject *)op;
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
    PyTypeObject *tp = Py_TYPE(op);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(op);
    Py_DECREF(tp);
}

static int str_arg(PyObject *obj, const char *what, int allow_none, const char **out)
{
    if (allow_none && obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str%s", what, allow_none ? " or None" : "");
        return -1;
    }
    *out = PyUnicode_AsUTF8AndSize(obj, NULL);
    return *out ? 0 : -1;
}

/* add(owner, name, task): register a running asyncio task. */
static PyObject *tasks_add(PyObject *op, PyObject *args)
{
    TasksObject *self = (TasksObject *)op;
    PyObject *owner_obj, *name_obj, *task;
    const char *owner, *name;
    if (!PyArg_ParseTuple(args, "OOO:add", &owner_obj, &name_obj, &task) ||
        str_arg(owner_obj, "owner", 0, &owner) < 0 || str_arg(name_obj, "name", 0, &name) < 0)
        return NULL;
    FinishObject *fin = PyObject_New(FinishObject, FinishType);
    if (!fin)
        return NULL;
    fin->entry = NULL;
    fin->tasks = op;
    Py_INCREF(op);
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

/* The active entries of owner (None: all), optionally only those named
 * `name`, in creation order.  Returns a new calloc'ed array (free it) and
 * its length in *n, or NULL with an exception set. */
static bgl_task **active_entries(TasksObject *self, const char *owner, const char *name, int *n)
{
    int total = bgl_tasks_list(self->reg, owner, NULL, 0);
    if (total < 0) {
        bglpy_raise_errno(total, "bgl_tasks_list");
        return NULL;
    }
    bgl_task **list = calloc((size_t)total + 1, sizeof *list);
    if (!list) {
        PyErr_NoMemory();
        return NULL;
    }
    total = bgl_tasks_list(self->reg, owner, list, (size_t)total);
    int k = 0;
    for (int i = 0; i < total; i++) {
        int st = bgl_task_get_state(list[i]);
        if (st != BGL_TASK_PENDING && st != BGL_TASK_RUNNING)
            continue;
        if (name && strcmp(bgl_task_name(list[i]), name) != 0)
            continue;
        list[k++] = list[i];
    }
    *n = k;
    return list;
}

/* tasks(owner=None, name=None) -> list of the registered asyncio tasks. */
static PyObject *tasks_tasks(PyObject *op, PyObject *args)
{
    TasksObject *self = (TasksObject *)op;
    PyObject *owner_obj = Py_None, *name_obj = Py_None;
    const char *owner, *name;
    if (!PyArg_ParseTuple(args, "|OO:tasks", &owner_obj, &name_obj) ||
        str_arg(owner_obj, "owner", 1, &owner) < 0 || str_arg(name_obj, "name", 1, &name) < 0)
        return NULL;
    int n;
    bgl_task **list = active_entries(self, owner, name, &n);
    if (!list)
        return NULL;
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < n; i++)
        if (PyList_Append(out, (PyObject *)bgl_task_userdata(list[i])) < 0)
            Py_CLEAR(out);
    free(list);
    return out;
}

/* active(owner=None) -> int: pending or running entries (O(1) for all). */
static PyObject *tasks_active(PyObject *op, PyObject *args)
{
    TasksObject *self = (TasksObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:active", &owner_obj) ||
        str_arg(owner_obj, "owner", 1, &owner) < 0)
        return NULL;
    return PyLong_FromLong(bgl_tasks_active(self->reg, owner));
}

/* cancel(owner=None) -> int: ask every active task of owner to cancel. */
static PyObject *tasks_cancel(PyObject *op, PyObject *args)
{
    TasksObject *self = (TasksObject *)op;
    PyObject *owner_obj = Py_None;
    const char *owner;
    if (!PyArg_ParseTuple(args, "|O:cancel", &owner_obj) ||
        str_arg(owner_obj, "owner", 1, &owner) < 0)
        return NULL;
    int r = bgl_tasks_cancel(self->reg, owner);
    if (r < 0)
        return bglpy_raise_errno(r, "bgl_tasks_cancel");
    return PyLong_FromLong(r);
}

static PyMethodDef tasks_methods[] = {
    {"add", tasks_add, METH_VARARGS, "add(owner, name, task): register an asyncio task."},
    {"tasks", tasks_tasks, METH_VARARGS,
     "tasks(owner=None, name=None) -> list: active registered tasks."},
    {"active", tasks_active, METH_VARARGS, "active(owner=None) -> int"},
    {"cancel", tasks_cancel, METH_VARARGS, "cancel(owner=None) -> int: cancel active tasks."},
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
    .basicsize = sizeof(TasksObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = tasks_slots,
};

/* For services.c: the registry behind a Tasks object (NULL if not one). */
bgl_tasks *bglpy_tasks_registry(PyObject *obj)
{
    if (!obj || !PyObject_TypeCheck(obj, TasksType))
        return NULL;
    return ((TasksObject *)obj)->reg;
}

int bglpy_services_tasks_init(PyObject *module)
{
    TasksType = (PyTypeObject *)PyType_FromSpec(&tasks_spec);
    if (!TasksType)
        return -1;
    if (PyModule_AddObject(module, "Tasks", (PyObject *)TasksType) < 0) {
        Py_DECREF(TasksType);
        return -1;
    }
    Py_INCREF(TasksType);
    FinishType = (PyTypeObject *)PyType_FromSpec(&finish_spec);
    return FinishType ? 0 : -1;
}
