/* handle.c - bgloop._bgloop.Handle and TimerHandle (see handle.h). */
#include "handle.h"

#include "structmember.h"

/* ---- creation ------------------------------------------------------------- */

/* The source traceback of a new handle: asyncio's
 * format_helpers.extract_stack() from the calling Python frame. */
static PyObject *source_traceback(bglpy_state *st)
{
    PyObject *getframe = PySys_GetObject("_getframe"); /* borrowed */
    if (!getframe) {
        PyErr_SetString(PyExc_RuntimeError, "sys._getframe is not available");
        return NULL;
    }
    PyObject *frame = PyObject_CallFunction(getframe, "i", 0);
    if (!frame)
        return NULL;
    PyObject *tb = PyObject_CallFunctionObjArgs(st->extract_stack, frame, NULL);
    Py_DECREF(frame);
    return tb;
}

static bglpy_handle *handle_make(bglpy_core *core, PyTypeObject *type, PyObject *when,
                                 PyObject *callback, PyObject *args, PyObject *context)
{
    bglpy_state *st = core->st;
    if (!PyTuple_Check(args)) {
        bglpy_wrong_type(args, "args", "a tuple");
        return NULL;
    }
    if (bglpy_check_open(core) < 0)
        return NULL;
    if (!core->owner) {
        PyErr_SetString(PyExc_RuntimeError, "core is not bound to a loop");
        return NULL;
    }
    if (context == Py_None)
        context = PyObject_CallNoArgs(st->copy_context);
    else
        Py_INCREF(context);
    if (!context)
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_handle *h = (bglpy_handle *)alloc(type, 0);
    if (!h) {
        Py_DECREF(context);
        return NULL;
    }
    Py_INCREF(callback);
    h->callback = callback;
    Py_INCREF(args);
    h->args = args;
    h->context = context;
    Py_INCREF(core->owner);
    h->loop = core->owner;
    Py_INCREF(core);
    h->core = core;
    Py_XINCREF(when);
    h->when = when;
    if (core->debug && !(h->source_traceback = source_traceback(st))) {
        Py_DECREF(h);
        return NULL;
    }
    return h;
}

static int check_args(Py_ssize_t nargs, Py_ssize_t want, const char *name)
{
    if (nargs == want)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
    return -1;
}

PyObject *bglpy_core_soon(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(nargs, 3, "soon") < 0)
        return NULL;
    bglpy_handle *h = handle_make(core, core->st->Handle, NULL, args[0], args[1], args[2]);
    if (h && bglpy_queue_handle(core, (PyObject *)h) < 0)
        Py_CLEAR(h);
    return (PyObject *)h;
}

PyObject *bglpy_core_soon_threadsafe(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(nargs, 3, "soon_threadsafe") < 0)
        return NULL;
    bglpy_handle *h = handle_make(core, core->st->Handle, NULL, args[0], args[1], args[2]);
    if (h && core->st->threadsafe_lock && !(h->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        Py_CLEAR(h);
    }
    if (h && bglpy_call_threadsafe(core, (PyObject *)h) < 0)
        Py_CLEAR(h);
    return (PyObject *)h;
}

PyObject *bglpy_core_at(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(nargs, 4, "at") < 0)
        return NULL;
    bglpy_handle *h =
        handle_make(core, core->st->TimerHandle, args[0], args[1], args[2], args[3]);
    if (!h)
        return NULL;
    PyObject *arm[2] = {args[0], (PyObject *)h};
    PyObject *timer = bglpy_core_call_at(core, arm, 2);
    if (!timer) {
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(timer); /* the core keeps it while armed */
    h->scheduled = 1;
    return (PyObject *)h;
}

void bglpy_handle_fired(bglpy_state *st, PyObject *handle)
{
    if (Py_TYPE(handle) == st->TimerHandle)
        ((bglpy_handle *)handle)->scheduled = 0;
    else if (PyObject_SetAttr(handle, st->str_scheduled, Py_False) < 0)
        PyErr_WriteUnraisable(handle); /* not a TimerHandle after all */
}

/* ---- running --------------------------------------------------------------- */

/* Take a thread-safe handle's lock (waiting without the GIL); 1 if taken
 * (ts_unlock() it), 0 if the handle has none or this thread holds it. */
static int ts_lock(bglpy_handle *h)
{
    if (!h->lock)
        return 0;
    unsigned long me = PyThread_get_thread_ident();
    if (h->lock_owner == me)
        return 0;
    if (!PyThread_acquire_lock(h->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(h->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    h->lock_owner = me;
    return 1;
}

static void ts_unlock(bglpy_handle *h, int locked)
{
    if (!locked)
        return;
    h->lock_owner = 0;
    PyThread_release_lock(h->lock);
}

/* Debug mode of the handle's loop (a handle the collector cleared has
 * none). */
static int loop_debug(bglpy_handle *h)
{
    return h->core && h->core->debug;
}

/* format_helpers._format_callback_source(callback, args[, debug=]) */
static PyObject *callback_source(bglpy_handle *h, PyObject *callback, PyObject *args)
{
    bglpy_state *st = bglpy_type_state(Py_TYPE(h));
    PyObject *pos = PyTuple_Pack(2, callback, args);
    if (!pos)
        return NULL;
    PyObject *kw = NULL;
    if (st->format_cb_debug &&
        !(kw = Py_BuildValue("{s:O}", "debug", loop_debug(h) ? Py_True : Py_False))) {
        Py_DECREF(pos);
        return NULL;
    }
    PyObject *r = PyObject_Call(st->format_cb, pos, kw);
    Py_DECREF(pos);
    Py_XDECREF(kw);
    return r;
}

/* The exception escaped callback(*args): hand it to
 * loop.call_exception_handler() with asyncio's keys.  0, or -1 to
 * propagate. */
static int report(bglpy_handle *h, PyObject *callback, PyObject *args)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    if (!value || PyErr_GivenExceptionMatches(value, PyExc_SystemExit) ||
        PyErr_GivenExceptionMatches(value, PyExc_KeyboardInterrupt)) {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *src = NULL, *msg = NULL, *ctx = NULL, *r = NULL;
    if (!(src = callback_source(h, callback, args)))
        goto done;
    if (!(msg = PyUnicode_FromFormat("Exception in callback %U", src)))
        goto done;
    if (!(ctx = Py_BuildValue("{s:O,s:O,s:O}", "message", msg, "exception", value, "handle",
                              (PyObject *)h)))
        goto done;
    if (h->source_traceback && PyObject_IsTrue(h->source_traceback) > 0 &&
        PyDict_SetItemString(ctx, "source_traceback", h->source_traceback) < 0)
        goto done;
    if (h->loop)
        r = PyObject_CallMethod(h->loop, "call_exception_handler", "O", ctx);
    else
        PyErr_SetString(PyExc_RuntimeError, "the handle has no loop any more");
done:
    Py_XDECREF(src);
    Py_XDECREF(msg);
    Py_XDECREF(ctx);
    Py_DECREF(value);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int handle_run(bglpy_handle *h);

int bglpy_handle_run(bglpy_handle *h)
{
    /* Another thread may have cancelled it since the dispatcher looked. */
    int locked = ts_lock(h);
    int rc = handle_run(h);
    ts_unlock(h, locked);
    return rc;
}

static int handle_run(bglpy_handle *h)
{
    PyObject *callback = h->callback, *args = h->args, *context = h->context;
    if (!callback)
        return 0;
    /* cancel() from inside the callback drops them: keep them. */
    Py_INCREF(callback);
    Py_INCREF(args);
    Py_INCREF(context);
    bglpy_state *st = bglpy_type_state(Py_TYPE(h));
    PyObject *r;
    /* Context.run(callback, *args); up to three arguments without building
     * a tuple (CallMethodObjArgs passes them on the stack). */
    switch (PyTuple_Size(args)) {
    case 0:
        r = PyObject_CallMethodObjArgs(context, st->str_ctx_run, callback, NULL);
        break;
    case 1:
        r = PyObject_CallMethodObjArgs(context, st->str_ctx_run, callback,
                                       PyTuple_GetItem(args, 0), NULL);
        break;
    case 2:
        r = PyObject_CallMethodObjArgs(context, st->str_ctx_run, callback, PyTuple_GetItem(args, 0),
                                       PyTuple_GetItem(args, 1), NULL);
        break;
    case 3:
        r = PyObject_CallMethodObjArgs(context, st->str_ctx_run, callback, PyTuple_GetItem(args, 0),
                                       PyTuple_GetItem(args, 1), PyTuple_GetItem(args, 2), NULL);
        break;
    default: {
        PyObject *head = PyTuple_Pack(2, context, callback);
        PyObject *call = head ? PySequence_Concat(head, args) : NULL;
        Py_XDECREF(head);
        r = call ? PyObject_Call(st->context_run, call, NULL) : NULL;
        Py_XDECREF(call);
    }
    }
    int rc = 0;
    if (r)
        Py_DECREF(r);
    else
        rc = report(h, callback, args);
    Py_DECREF(callback);
    Py_DECREF(args);
    Py_DECREF(context);
    return rc;
}

/* ---- methods --------------------------------------------------------------- */

static int cancel(bglpy_handle *self);

static PyObject *handle_cancel(bglpy_handle *self, PyObject *unused)
{
    (void)unused;
    int locked = ts_lock(self);
    int r = cancel(self);
    ts_unlock(self, locked);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int cancel(bglpy_handle *self)
{
    if (self->cancelled)
        return 0;
    if (self->when && self->scheduled && self->core) {
        /* What Loop._timer_handle_cancelled() does: disarm the C timer. */
        PyObject *r = bglpy_core_cancel_timer(self->core, (PyObject *)self);
        if (!r)
            return -1;
        Py_DECREF(r);
        self->scheduled = 0;
    }
    self->cancelled = 1;
    if (loop_debug(self)) {
        /* Keep callback and arguments in the repr (slow-callback messages). */
        PyObject *repr = PyObject_Repr((PyObject *)self);
        if (!repr)
            return -1;
        Py_XDECREF(self->repr);
        self->repr = repr;
    }
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    return 0;
}

static PyObject *handle_cancelled(bglpy_handle *self, PyObject *unused)
{
    (void)unused;
    int locked = ts_lock(self);
    int cancelled = self->cancelled;
    ts_unlock(self, locked);
    return PyBool_FromLong(cancelled);
}

static PyObject *get_obj(PyObject *o)
{
    if (!o)
        o = Py_None;
    Py_INCREF(o);
    return o;
}

static PyObject *handle_get_context(bglpy_handle *self, PyObject *unused)
{
    (void)unused;
    return get_obj(self->context);
}

static PyObject *handle_when(bglpy_handle *self, PyObject *unused)
{
    (void)unused;
    return get_obj(self->when);
}

static PyObject *handle_run_method(bglpy_handle *self, PyObject *unused)
{
    (void)unused;
    if (bglpy_handle_run(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- repr ----------------------------------------------------------------- */

static int append_str(PyObject *list, PyObject *s)
{
    if (!s)
        return -1;
    int r = PyList_Append(list, s);
    Py_DECREF(s);
    return r;
}

static PyObject *handle_repr(bglpy_handle *self)
{
    if (self->repr) {
        Py_INCREF(self->repr);
        return self->repr;
    }
    PyObject *info = PyList_New(0), *result = NULL;
    if (!info)
        return NULL;
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__name__");
    if (append_str(info, name) < 0)
        goto done;
    if (self->cancelled && append_str(info, PyUnicode_FromString("cancelled")) < 0)
        goto done;
    if (self->when && append_str(info, PyUnicode_FromFormat("when=%S", self->when)) < 0)
        goto done;
    if (self->callback) {
        PyObject *src = callback_source(self, self->callback, self->args);
        if (append_str(info, src) < 0)
            goto done;
    }
    if (self->source_traceback && PyObject_IsTrue(self->source_traceback) > 0) {
        PyObject *frame = PySequence_GetItem(self->source_traceback, -1);
        PyObject *file = frame ? PySequence_GetItem(frame, 0) : NULL;
        PyObject *line = frame ? PySequence_GetItem(frame, 1) : NULL;
        PyObject *s = file && line ? PyUnicode_FromFormat("created at %S:%S", file, line) : NULL;
        Py_XDECREF(frame);
        Py_XDECREF(file);
        Py_XDECREF(line);
        if (append_str(info, s) < 0)
            goto done;
    }
    PyObject *sep = PyUnicode_FromString(" ");
    PyObject *joined = sep ? PyUnicode_Join(sep, info) : NULL;
    Py_XDECREF(sep);
    if (joined) {
        result = PyUnicode_FromFormat("<%U>", joined);
        Py_DECREF(joined);
    }
done:
    Py_DECREF(info);
    return result;
}

/* ---- TimerHandle ordering (asyncio's: by when; equal when when, callback,
 * args and cancelled state are) ---------------------------------------------- */

static int timer_eq(bglpy_handle *a, bglpy_handle *b)
{
    if (a == b)
        return 1;
    int r = PyObject_RichCompareBool(a->when, b->when, Py_EQ);
    if (r <= 0)
        return r;
    if (a->cancelled != b->cancelled)
        return 0;
    if (!a->callback || !b->callback)
        return a->callback == b->callback;
    r = PyObject_RichCompareBool(a->callback, b->callback, Py_EQ);
    if (r <= 0)
        return r;
    return PyObject_RichCompareBool(a->args, b->args, Py_EQ);
}

static PyObject *timer_richcompare(bglpy_handle *self, PyObject *other, int op)
{
    bglpy_handle *o = (bglpy_handle *)other;
    if (Py_TYPE(other) != Py_TYPE(self) || !self->when || !o->when)
        Py_RETURN_NOTIMPLEMENTED;
    int r;
    switch (op) {
    case Py_EQ:
    case Py_NE:
        r = timer_eq(self, o);
        if (r < 0)
            return NULL;
        return PyBool_FromLong(op == Py_EQ ? r : !r);
    case Py_LT:
    case Py_GT:
        return PyObject_RichCompare(self->when, o->when, op);
    default: /* Py_LE, Py_GE: strictly before/after, or equal */
        r = PyObject_RichCompareBool(self->when, o->when, op == Py_LE ? Py_LT : Py_GT);
        if (r == 0)
            r = timer_eq(self, o);
        if (r < 0)
            return NULL;
        return PyBool_FromLong(r);
    }
}

static Py_hash_t timer_hash(bglpy_handle *self)
{
    return PyObject_Hash(self->when ? self->when : Py_None);
}

/* ---- attributes asyncio's loop and tools read -------------------------------- */

static PyObject *get_callback(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->callback);
}

static PyObject *get_args(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->args);
}

static PyObject *get_cancelled(bglpy_handle *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->cancelled);
}

static PyObject *get_loop(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->loop);
}

static PyObject *get_context(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->context);
}

static PyObject *get_repr(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->repr);
}

static PyObject *get_source_traceback(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->source_traceback);
}

static int set_source_traceback(bglpy_handle *self, PyObject *v, void *c)
{
    (void)c;
    if (v == Py_None)
        v = NULL;
    Py_XINCREF(v);
    PyObject *old = self->source_traceback;
    self->source_traceback = v;
    Py_XDECREF(old);
    return 0;
}

static PyObject *get_when(bglpy_handle *self, void *c)
{
    (void)c;
    return get_obj(self->when);
}

static PyObject *get_scheduled(bglpy_handle *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->scheduled);
}

static int set_scheduled(bglpy_handle *self, PyObject *v, void *c)
{
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "_scheduled cannot be deleted");
        return -1;
    }
    int b = PyObject_IsTrue(v);
    if (b < 0)
        return -1;
    self->scheduled = (char)b;
    return 0;
}

/* ---- type plumbing --------------------------------------------------------- */

static int handle_traverse(bglpy_handle *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    Py_VISIT(self->context);
    Py_VISIT(self->loop);
    Py_VISIT((PyObject *)self->core);
    Py_VISIT(self->source_traceback);
    Py_VISIT(self->repr);
    Py_VISIT(self->when);
    return 0;
}

static int handle_clear(bglpy_handle *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    Py_CLEAR(self->context);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->source_traceback);
    Py_CLEAR(self->repr);
    Py_CLEAR(self->when);
    Py_CLEAR(self->core);
    return 0;
}

static void handle_dealloc(bglpy_handle *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    handle_clear(self);
    if (self->lock)
        PyThread_free_lock(self->lock);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyObject *handle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError,
                    "bgloop handles are made by the loop (call_soon, call_at, call_later, "
                    "call_soon_threadsafe)");
    return NULL;
}

#define COMMON_METHODS                                                                    \
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS,                                    \
     "Cancel the callback; a no-op if it already ran or was cancelled."},                  \
        {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS,                          \
         "True if cancel() was called."},                                                  \
        {"get_context", (PyCFunction)handle_get_context, METH_NOARGS,                      \
         "The contextvars.Context the callback runs in."},                                 \
        {"_run", (PyCFunction)handle_run_method, METH_NOARGS,                              \
         "Run the callback in its context; exceptions go to the loop's handler."}

static PyMethodDef handle_methods[] = {
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef timer_handle_methods[] = {
    COMMON_METHODS,
    {"when", (PyCFunction)handle_when, METH_NOARGS,
     "The scheduled time, on the loop's clock (loop.time())."},
    {NULL, NULL, 0, NULL},
};

#define COMMON_GETSET                                                                     \
    {"_callback", (getter)get_callback, NULL, NULL, NULL},                                 \
        {"_args", (getter)get_args, NULL, NULL, NULL},                                     \
        {"_cancelled", (getter)get_cancelled, NULL, NULL, NULL},                           \
        {"_loop", (getter)get_loop, NULL, NULL, NULL},                                     \
        {"_context", (getter)get_context, NULL, NULL, NULL},                               \
        {"_repr", (getter)get_repr, NULL, NULL, NULL},                                     \
        {"_source_traceback", (getter)get_source_traceback,                                \
         (setter)set_source_traceback, NULL, NULL}

static PyGetSetDef handle_getset[] = {
    COMMON_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef timer_handle_getset[] = {
    COMMON_GETSET,
    {"_when", (getter)get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)get_scheduled, (setter)set_scheduled, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef handle_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(bglpy_handle, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_new, handle_new},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, handle_repr},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_members, handle_members},
    {Py_tp_doc, "A callback scheduled with call_soon() or call_soon_threadsafe() "
                "(asyncio.Handle's API)."},
    {0, NULL},
};

static PyType_Slot timer_handle_slots[] = {
    {Py_tp_new, handle_new},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, handle_repr},
    {Py_tp_richcompare, timer_richcompare},
    {Py_tp_hash, timer_hash},
    {Py_tp_methods, timer_handle_methods},
    {Py_tp_getset, timer_handle_getset},
    {Py_tp_members, handle_members},
    {Py_tp_doc, "A callback scheduled with call_at() or call_later() "
                "(asyncio.TimerHandle's API)."},
    {0, NULL},
};

static PyType_Spec handle_spec = {
    "bgloop._bgloop.Handle",
    sizeof(bglpy_handle),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    handle_slots,
};

static PyType_Spec timer_handle_spec = {
    "bgloop._bgloop.TimerHandle",
    sizeof(bglpy_handle),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    timer_handle_slots,
};

/* A module's attribute (new reference). */
static PyObject *import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return NULL;
    PyObject *a = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return a;
}

int bglpy_handle_init(PyObject *module, bglpy_state *st)
{
    if (bglpy_add_type(module, &handle_spec, &st->Handle, 1) < 0 ||
        bglpy_add_type(module, &timer_handle_spec, &st->TimerHandle, 1) < 0)
        return -1;
    PyObject *context_type = import_attr("contextvars", "Context");
    if (!context_type)
        return -1;
    st->context_run = PyObject_GetAttrString(context_type, "run");
    Py_DECREF(context_type);
    if (!st->context_run || !(st->str_ctx_run = PyUnicode_InternFromString("run")) ||
        !(st->copy_context = import_attr("contextvars", "copy_context")) ||
        !(st->extract_stack = import_attr("asyncio.format_helpers", "extract_stack")) ||
        !(st->format_cb = import_attr("asyncio.format_helpers", "_format_callback_source")))
        return -1;
    /* Python 3.13 added format_helpers' `debug` keyword (shows the args of a
     * partial in debug mode only). */
    PyObject *kwd = PyObject_GetAttrString(st->format_cb, "__kwdefaults__");
    if (!kwd)
        return -1;
    st->format_cb_debug = PyDict_Check(kwd) && PyDict_GetItemString(kwd, "debug") != NULL;
    Py_DECREF(kwd);
    PyObject *ts = import_attr("asyncio.events", "_ThreadSafeHandle");
    st->threadsafe_lock = ts != NULL;
    if (!ts) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
    }
    Py_XDECREF(ts);
    return 0;
}
