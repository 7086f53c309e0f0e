/* bglpy.h - the conventions of the bgloop._bgloop extension.
 *
 * Stable ABI of Python 3.10 (Py_LIMITED_API is set by Meson): limited-API
 * calls only (no Py_XSETREF, no tp_name, no PyType_GetModuleByDef).
 *
 * MODULE STATE.  The extension has no C globals holding Python objects.
 * Every type object and interned name lives in the module's bglpy_state
 * (below), created in module.c's exec slot and visited/cleared by the
 * module's m_traverse/m_clear.  To add one, add a line to BGLPY_TYPES or
 * BGLPY_NAMES; nothing else needs to know.
 *
 * REACHING THE STATE.  One rule per situation:
 *   - module-level functions:      bglpy_module_state(module);
 *   - methods and slots of a type: bglpy_type_state(Py_TYPE(self)), or
 *     bglpy_type_state(type) in tp_new.  Every type is made with
 *     bglpy_add_type() (PyType_FromModuleAndSpec) and is not subclassable,
 *     so Py_TYPE(self) is always the defining class;
 *   - C callbacks (libbgloop calls them with a userdata, no `self`): the
 *     object they reach stores the state pointer, e.g. bglpy_core.st.  It
 *     stays valid as long as the object: the object holds its type, the
 *     type holds the module.
 *
 * PARTS.  Each source file owns one part of the module and exports
 *     int bglpy_<part>_init(PyObject *module, bglpy_state *st);
 * which creates its types (bglpy_add_type()) and functions; module.c's exec
 * slot calls them in order.  0, or -1 with an exception set.
 *
 * METHODS take a typed self: `static PyObject *core_kick(bglpy_core *self,
 * PyObject *const *args, Py_ssize_t nargs)`, cast to PyCFunction in the
 * method table.
 *
 * SHARED HELPERS: bglpy_seconds() parses every duration argument,
 * bglpy_raise_errno() turns a libbgloop error into OSError, core.h's
 * bglpy_check_open() raises "Event loop is closed", list.h is the one
 * intrusive list.
 */
#ifndef BGLPY_H
#define BGLPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "list.h"

/* Type objects, by the name of the Python type. */
#define BGLPY_TYPES(X)                                                          \
    X(Core)         /* core.c */                                                \
    X(Timer)        /* timer.c */                                               \
    X(Handle)       /* handle.c */                                              \
    X(TimerHandle)  /* handle.c */                                              \
    X(Watcher)      /* watcher.c */                                             \
    X(SignalWatcher) /* signal_watcher.c */                                     \
    X(Services)     /* services.c */                                            \
    X(ResourceDone) /* services.c */                                            \
    X(Tasks)        /* services_tasks.c */                                      \
    X(TaskFinish)   /* services_tasks.c */                                      \
    X(LagProbe)     /* lag.c */                                                 \
    X(Notifier)     /* notify.c */                                              \
    X(SocketTransport) /* transport.c */

/* Interned attribute names: `st->str_<name>` is the str "<name>". */
#define BGLPY_NAMES(X)                                                          \
    X(_run)                                                                     \
    X(_cancelled)                                                               \
    X(_scheduled)                                                               \
    X(_bgl_run_debug)                                                           \
    X(_bgl_slow)                                                                \
    X(_remove_reader)                                                           \
    X(_remove_writer)                                                           \
    X(_bgl_kick_enter)                                                          \
    X(_bgl_kick_exit)                                                           \
    X(data_received)                                                            \
    X(_thread_id)                                                               \
    X(_nothing_left)                                                            \
    X(_closed)                                                                  \
    X(_stopping)                                                                \
    X(callback)                                                                 \
    X(delay)                                                                    \
    X(when)                                                                     \
    X(call_soon)                                                                \
    X(call_later)                                                               \
    X(call_at)                                                                  \
    X(context)                                                                  \
    X(timeout)                                                                  \
    X(budget)                                                                   \
    X(_stream_reader_wr)                                                        \
    X(_eof)                                                                     \
    X(_buffer)                                                                  \
    X(_waiter)                                                                  \
    X(_transport)                                                               \
    X(_paused)                                                                  \
    X(_limit)                                                                   \
    X(feed_data)                                                                \
    X(_wakeup_waiter)                                                           \
    X(cancelled)                                                                \
    X(set_result)                                                               \
    X(pause_reading)                                                            \
    X(extend)                                                                   \
    X(loop)

typedef struct bglpy_state {
#define BGLPY_X(name) PyTypeObject *name;
    BGLPY_TYPES(BGLPY_X)
#undef BGLPY_X
#define BGLPY_X(name) PyObject *str##name;
    BGLPY_NAMES(BGLPY_X)
#undef BGLPY_X
    /* Recycled queue nodes of dispatch.c (plain memory, no references). */
    bglpy_link pending_free;
    int pending_nfree;
    /* handle.c: contextvars.Context.run, its name, copy_context, asyncio's
     * format_helpers.extract_stack and _format_callback_source (and whether
     * it takes debug=). */
    PyObject *context_run, *str_ctx_run, *copy_context, *extract_stack, *format_cb;
    int format_cb_debug;
    /* asyncio has _ThreadSafeHandle (3.14): call_soon_threadsafe() handles
     * lock out cancel() and cancelled() of other threads while they run. */
    int threadsafe_lock;
    /* transport.c's receive buffer (BGLPY_RECV_MAX bytes; the GIL guards it). */
    char *rbuf;
    /* stream_data.c: asyncio.streams' StreamReaderProtocol and StreamReader
     * and the functions of theirs it stands in for; streams_state 0 not
     * looked up yet, 1 found, -1 not usable.  streams_assert: `assert`
     * statements run (python without -O). */
    PyObject *srp_type, *sr_type;
    PyObject *srp_data_received, *sr_feed_data, *sr_wakeup_waiter;
    int streams_state, streams_assert;
    /* loop_fast.c: asyncio.futures.Future and time.monotonic, once looked
     * up. */
    PyObject *future_type, *monotonic;
} bglpy_state;

static inline bglpy_state *bglpy_module_state(PyObject *module)
{
    return (bglpy_state *)PyModule_GetState(module);
}

static inline bglpy_state *bglpy_type_state(PyTypeObject *type)
{
    return (bglpy_state *)PyType_GetModuleState(type);
}

/* Free the recycled queue nodes (module teardown). */
void bglpy_pending_free_all(bglpy_state *st);

/* Create a type of this module from spec, keep it in *slot (a field of the
 * state) and, if `expose`, add it to the module under its short name.
 * 0, or -1 with an exception set. */
int bglpy_add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot, int expose);

/* A duration in seconds as nanoseconds: an int, a float or an object with
 * __float__ (not a bool or a str).  With allow_none, None, +inf and values
 * beyond ~285 years mean "no limit" and give -1; without, they are errors.
 * TypeError names the type it got, ValueError a NaN or a negative value;
 * both start with `what` (the argument's name).  0, or -1 with an exception
 * set. */
int bglpy_seconds(PyObject *o, const char *what, int allow_none, int64_t *ns);

/* A str as UTF-8 bytes for a C message (an error text): lone surrogates and
 * NUL characters are escaped rather than refused or cut off, so the text
 * always reaches C.  A new bytes object, or NULL with an exception set. */
PyObject *bglpy_text(PyObject *s);

/* Raise TypeError "<what> must be <expected>, not <type of o>" (the limited
 * API has no tp_name: the name is asked of the type).  Returns -1. */
int bglpy_wrong_type(PyObject *o, const char *what, const char *expected);

/* Raise OSError (the errno subclass) for a negative errno from libbgloop,
 * naming what failed.  Always returns NULL. */
PyObject *bglpy_raise_errno(int err, const char *what);

/* Parts, called in this order by module.c. */
int bglpy_core_init(PyObject *module, bglpy_state *st);            /* core.c, timer.c, watcher.c */
int bglpy_handle_init(PyObject *module, bglpy_state *st);          /* handle.c */
int bglpy_services_init(PyObject *module, bglpy_state *st);        /* services.c, resources.c */
int bglpy_services_signal_init(PyObject *module, bglpy_state *st); /* sigaction.c */
int bglpy_services_tasks_init(PyObject *module, bglpy_state *st);  /* tasks.c */
int bglpy_notify_init(PyObject *module, bglpy_state *st);          /* notify.c */
int bglpy_transport_init(PyObject *module, bglpy_state *st);       /* transport.c */
int bglpy_lag_init(PyObject *module, bglpy_state *st);             /* lag.c */

#endif /* BGLPY_H */
