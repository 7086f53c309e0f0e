/* service_config.c - add()'s Python arguments as a bgl_service_config.
 *
 * Only Python types are converted here: the service manager checks the
 * values (bgl_service_add() refuses with a text naming the service and the
 * field).  Errors raised here name them the same way.
 */
#include "services.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A duration field of the configuration: None keeps the C default. */
static int cfg_seconds(PyObject *o, const char *svc, const char *field, uint64_t *out)
{
    if (!o || o == Py_None)
        return 0;
    char what[256];
    snprintf(what, sizeof what, "service '%s': %s", svc, field);
    int64_t ns;
    if (bglpy_seconds(o, what, 1, &ns) < 0)
        return -1;
    *out = ns < 0 ? (uint64_t)INT64_MAX : (uint64_t)ns;
    return 0;
}

static int cfg_restart(PyObject *error_type, PyObject *o, const char *svc,
                       bgl_restart_policy *out)
{
    if (!o || o == Py_None)
        return 0;
    char what[256];
    snprintf(what, sizeof what, "service '%s': restart", svc);
    if (PyUnicode_Check(o)) {
        const char *s;
        if (bglpy_str_arg(o, what, 0, &s) < 0)
            return -1;
        for (int p = BGL_RESTART_NO; p <= BGL_RESTART_ALWAYS; p++) {
            if (strcmp(s, bgl_restart_policy_name(p)) == 0) {
                *out = (bgl_restart_policy)p;
                return 0;
            }
        }
        goto unknown;
    }
    if (PyLong_Check(o) && !PyBool_Check(o)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        /* The manager checks the range of what fits its enum; a cast would
         * turn 2**32 + 1 into 1. */
        if (overflow || v < INT_MIN || v > INT_MAX)
            goto unknown;
        *out = (bgl_restart_policy)v;
        return 0;
    }
    bglpy_wrong_type(o, what, "a str");
    return -1;
unknown:
    PyErr_Format(error_type ? error_type : PyExc_ValueError,
                 "service '%s': unknown restart policy %R (expected 'no', 'on-failure' or "
                 "'always')",
                 svc, o);
    return -1;
}

static int cfg_count(PyObject *o, const char *svc, const char *field, unsigned *out)
{
    if (!o || o == Py_None)
        return 0;
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        char what[256];
        snprintf(what, sizeof what, "service '%s': %s", svc, field);
        bglpy_wrong_type(o, what, "an int");
        return -1;
    }
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        v = -1;
    }
    if (v < 0 || (unsigned long)v > (unsigned long)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "service '%s': %s must be an int >= 0 (0 = no limit), got %R",
                     svc, field, o);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* depends_on: a sequence of names (not one str).  Fills a NULL-terminated
 * array pointing into *keep, which the caller releases with free() and
 * Py_DECREF(). */
static const char **cfg_deps(PyObject *o, const char *svc, PyObject **keep)
{
    *keep = NULL;
    if (!o || o == Py_None)
        return calloc(1, sizeof(const char *));
    if (PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError,
                     "service '%s': depends_on must be a sequence of names, not the string %R "
                     "(write (%R,))",
                     svc, o, o);
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(o);
    if (!seq) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "service '%s': depends_on must be a sequence of names",
                         svc);
        }
        return NULL;
    }
    Py_ssize_t n = PyTuple_Size(seq);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(seq, i);
        char what[256];
        snprintf(what, sizeof what, "service '%s': a dependency name", svc);
        names[i] = NULL;
        if (!PyUnicode_Check(item))
            PyErr_Format(PyExc_TypeError, "service '%s': dependency names must be str, got %R",
                         svc, item);
        else
            bglpy_str_arg(item, what, 0, &names[i]);
        if (!names[i]) {
            free(names);
            Py_DECREF(seq);
            return NULL;
        }
    }
    *keep = seq;
    return names;
}

const char **bglpy_service_config(const bglpy_service_args *a, PyObject *error_type,
                                  bgl_service_config *cfg, PyObject **keep)
{
    const char *name = cfg->name;
    *keep = NULL;
    if (cfg_restart(error_type, a->restart, name, &cfg->restart) < 0 ||
        cfg_seconds(a->stop_timeout, name, "stop_timeout", &cfg->stop_timeout_ns) < 0 ||
        cfg_seconds(a->close_timeout, name, "close_timeout", &cfg->close_timeout_ns) < 0 ||
        cfg_seconds(a->restart_delay, name, "restart_delay", &cfg->restart_delay_ns) < 0 ||
        cfg_seconds(a->restart_delay_max, name, "restart_delay_max",
                    &cfg->restart_delay_max_ns) < 0 ||
        cfg_count(a->start_limit_burst, name, "start_limit_burst", &cfg->start_limit_burst) < 0 ||
        cfg_seconds(a->start_limit_interval, name, "start_limit_interval",
                    &cfg->start_limit_interval_ns) < 0)
        return NULL;
    return cfg_deps(a->depends_on, name, keep);
}
