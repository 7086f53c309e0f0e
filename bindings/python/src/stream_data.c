/* stream_data.c - received bytes to a protocol, asyncio's streams directly.
 *
 * The data path of asyncio's streams is four small Python functions
 * (StreamReaderProtocol.data_received and ._stream_reader,
 * StreamReader.feed_data and ._wakeup_waiter), the same in CPython 3.10 to
 * 3.14: append the bytes to the reader's bytearray, wake its waiter, pause
 * reading above twice the reader's limit.  For exactly those classes, with
 * those functions still asyncio's when a connection's first bytes arrive,
 * the same steps run here, and the bytes go from the receive buffer into
 * the bytearray without a bytes object in between.  (Attributes are read
 * with getattr, not through the instance dict: asking for the dict would
 * make CPython 3.11+ give up the objects' inline attribute values and slow
 * asyncio's own code on them.)
 */
#include "stream_data.h"

/* cls.<name>, if it is asyncio's own function (by module and qualified
 * name); NULL with an exception otherwise. */
static PyObject *asyncio_function(PyObject *cls, const char *name, const char *qualname)
{
    PyObject *f = PyObject_GetAttrString(cls, name);
    if (!f)
        return NULL;
    PyObject *mod = PyObject_GetAttrString(f, "__module__");
    PyObject *qn = mod ? PyObject_GetAttrString(f, "__qualname__") : NULL;
    int ok = qn && PyUnicode_Check(mod) && PyUnicode_Check(qn) &&
             PyUnicode_CompareWithASCIIString(mod, "asyncio.streams") == 0 &&
             PyUnicode_CompareWithASCIIString(qn, qualname) == 0;
    Py_XDECREF(mod);
    Py_XDECREF(qn);
    if (!ok) {
        Py_DECREF(f);
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_LookupError, "%s is not asyncio's", qualname);
        return NULL;
    }
    return f;
}

/* Find asyncio's classes, once.  1 the direct path is possible, 0 not
 * (never an exception). */
static int streams_ready(bglpy_state *st)
{
    if (st->streams_state)
        return st->streams_state > 0;
    st->streams_state = -1;
    PyObject *mod = PyImport_ImportModule("asyncio.streams");
    PyObject *srp = mod ? PyObject_GetAttrString(mod, "StreamReaderProtocol") : NULL;
    PyObject *sr = srp ? PyObject_GetAttrString(mod, "StreamReader") : NULL;
    PyObject *flags = sr ? PySys_GetObject("flags") : NULL; /* borrowed */
    PyObject *optimize = flags ? PyObject_GetAttrString(flags, "optimize") : NULL;
    Py_XDECREF(mod);
    if (optimize && PyType_Check(srp) && PyType_Check(sr) &&
        (st->srp_data_received =
             asyncio_function(srp, "data_received", "StreamReaderProtocol.data_received")) &&
        (st->sr_feed_data = asyncio_function(sr, "feed_data", "StreamReader.feed_data")) &&
        (st->sr_wakeup_waiter =
             asyncio_function(sr, "_wakeup_waiter", "StreamReader._wakeup_waiter"))) {
        st->srp_type = srp;
        st->sr_type = sr;
        st->streams_assert = PyObject_IsTrue(optimize) == 0;
        st->streams_state = 1;
        Py_DECREF(optimize);
        return 1;
    }
    PyErr_Clear();
    Py_XDECREF(optimize);
    Py_XDECREF(srp);
    Py_XDECREF(sr);
    Py_CLEAR(st->srp_data_received);
    Py_CLEAR(st->sr_feed_data);
    Py_CLEAR(st->sr_wakeup_waiter);
    return 0;
}

/* type(o).<name> is still `expect`: 1 yes, 0 no, -1 error. */
static int still(PyObject *o, PyObject *name, PyObject *expect)
{
    PyObject *f = PyObject_GetAttr((PyObject *)Py_TYPE(o), name);
    if (!f)
        return -1;
    Py_DECREF(f);
    return f == expect;
}

/* The reader of a StreamReaderProtocol (new reference), or Py_None if it is
 * gone; NULL with an exception. */
static PyObject *stream_reader(bglpy_state *st, PyObject *protocol)
{
    PyObject *wr = PyObject_GetAttr(protocol, st->str_stream_reader_wr);
    if (!wr)
        return NULL;
    PyObject *reader = wr == Py_None ? Py_NewRef(Py_None) : PyObject_CallNoArgs(wr);
    Py_DECREF(wr);
    return reader;
}

/* A connection's first bytes: does the direct path apply to this protocol
 * (and its reader)?  1 yes, 0 no, -1 error. */
static int decide(bglpy_state *st, PyObject *protocol)
{
    if (!streams_ready(st) || Py_TYPE(protocol) != (PyTypeObject *)st->srp_type)
        return 0;
    int ok = still(protocol, st->strdata_received, st->srp_data_received);
    if (ok <= 0)
        return ok;
    PyObject *reader = stream_reader(st, protocol);
    if (!reader)
        return -1;
    if (reader == Py_None)
        ok = 1; /* nothing to feed either way */
    else if (Py_TYPE(reader) != (PyTypeObject *)st->sr_type)
        ok = 0;
    else {
        ok = still(reader, st->strfeed_data, st->sr_feed_data);
        if (ok > 0)
            ok = still(reader, st->str_wakeup_waiter, st->sr_wakeup_waiter);
    }
    Py_DECREF(reader);
    return ok;
}

/* StreamReader._wakeup_waiter() */
static int wakeup_waiter(bglpy_state *st, PyObject *reader)
{
    PyObject *waiter = PyObject_GetAttr(reader, st->str_waiter);
    if (!waiter)
        return -1;
    int r = 0;
    if (waiter != Py_None) {
        r = PyObject_SetAttr(reader, st->str_waiter, Py_None);
        PyObject *c = r < 0 ? NULL : PyObject_CallMethodObjArgs(waiter, st->strcancelled, NULL);
        int cancelled = c ? PyObject_IsTrue(c) : -1;
        Py_XDECREF(c);
        if (cancelled < 0)
            r = -1;
        else if (!cancelled) {
            PyObject *res = PyObject_CallMethodObjArgs(waiter, st->strset_result, Py_None, NULL);
            Py_XDECREF(res);
            r = res ? 0 : -1;
        }
    }
    Py_DECREF(waiter);
    return r;
}

/* buffer.extend(bytes) */
static int extend(bglpy_state *st, PyObject *buffer, const char *buf, Py_ssize_t n)
{
    if (PyByteArray_CheckExact(buffer)) {
        Py_ssize_t old = PyByteArray_Size(buffer);
        if (PyByteArray_Resize(buffer, old + n) < 0)
            return -1;
        memcpy(PyByteArray_AsString(buffer) + old, buf, (size_t)n);
        return 0;
    }
    PyObject *data = PyBytes_FromStringAndSize(buf, n);
    PyObject *r = data ? PyObject_CallMethodObjArgs(buffer, st->strextend, data, NULL) : NULL;
    Py_XDECREF(data);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* len(buffer) > 2 * limit: 1, 0, or -1 with an exception. */
static int over_limit(PyObject *buffer, PyObject *limit)
{
    Py_ssize_t size = PyObject_Size(buffer);
    if (size < 0)
        return -1;
    if (PyLong_CheckExact(limit)) {
        int overflow;
        long long lim = PyLong_AsLongLongAndOverflow(limit, &overflow);
        if (lim == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && lim > -(1LL << 62) && lim < (1LL << 62))
            return (long long)size > 2 * lim;
    }
    PyObject *two = PyLong_FromLong(2);
    PyObject *twice = two ? PyNumber_Multiply(two, limit) : NULL;
    PyObject *len = twice ? PyLong_FromSsize_t(size) : NULL;
    int r = len ? PyObject_RichCompareBool(len, twice, Py_GT) : -1;
    Py_XDECREF(two);
    Py_XDECREF(twice);
    Py_XDECREF(len);
    return r;
}

static int attr_true(PyObject *o, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(o, name);
    int r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    return r;
}

/* The tail of feed_data(): pause the transport once the buffer holds more
 * than twice the limit. */
static int maybe_pause(bglpy_state *st, PyObject *reader, PyObject *buffer)
{
    PyObject *transport = PyObject_GetAttr(reader, st->str_transport);
    if (!transport)
        return -1;
    int r = 0;
    if (transport != Py_None) {
        int paused = attr_true(reader, st->str_paused);
        PyObject *limit = paused ? NULL : PyObject_GetAttr(reader, st->str_limit);
        int over = limit ? over_limit(buffer, limit) : -1;
        Py_XDECREF(limit);
        if (paused < 0 || (!paused && over < 0))
            r = -1;
        else if (!paused && over) {
            PyObject *res = PyObject_CallMethodObjArgs(transport, st->strpause_reading, NULL);
            Py_XDECREF(res);
            if (res)
                r = PyObject_SetAttr(reader, st->str_paused, Py_True);
            else if (PyErr_ExceptionMatches(PyExc_NotImplementedError)) {
                /* The transport cannot pause: asyncio forgets it. */
                PyErr_Clear();
                r = PyObject_SetAttr(reader, st->str_transport, Py_None);
            } else
                r = -1;
        }
    }
    Py_DECREF(transport);
    return r;
}

/* StreamReader.feed_data(data) */
static int feed_data(bglpy_state *st, PyObject *reader, const char *buf, Py_ssize_t n)
{
    if (st->streams_assert) {
        int eof = attr_true(reader, st->str_eof);
        if (eof < 0)
            return -1;
        if (eof) {
            PyErr_SetString(PyExc_AssertionError, "feed_data after feed_eof");
            return -1;
        }
    }
    PyObject *buffer = PyObject_GetAttr(reader, st->str_buffer);
    if (!buffer)
        return -1;
    int r = extend(st, buffer, buf, n);
    if (r == 0)
        r = wakeup_waiter(st, reader);
    if (r == 0)
        r = maybe_pause(st, reader, buffer);
    Py_DECREF(buffer);
    return r;
}

/* target.<method>(bytes) */
static int ordinary(PyObject *target, PyObject *method, const char *buf, Py_ssize_t n)
{
    PyObject *data = PyBytes_FromStringAndSize(buf, n);
    PyObject *r = data ? PyObject_CallMethodObjArgs(target, method, data, NULL) : NULL;
    Py_XDECREF(data);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int bglpy_data_received(bglpy_state *st, PyObject *protocol, signed char *direct,
                        const char *buf, Py_ssize_t n)
{
    if (*direct == 0) {
        int d = decide(st, protocol);
        if (d < 0)
            return -1;
        *direct = d ? 1 : -1;
    }
    if (*direct < 0)
        return ordinary(protocol, st->strdata_received, buf, n);
    /* StreamReaderProtocol.data_received(): feed the reader if still alive. */
    PyObject *reader = stream_reader(st, protocol);
    if (!reader)
        return -1;
    int r = 0;
    if (reader != Py_None)
        r = Py_TYPE(reader) == (PyTypeObject *)st->sr_type
                ? feed_data(st, reader, buf, n)
                : ordinary(reader, st->strfeed_data, buf, n);
    Py_DECREF(reader);
    return r;
}
