/* transport.c - bgloop._bgloop.SocketTransport (see transport.h).
 *
 * Semantics follow asyncio's _SelectorSocketTransport line by line: the
 * same state (_closing, _eof, _paused, _conn_lost, _protocol_paused, the
 * water marks), the same order of callbacks and the same messages for the
 * loop's exception handler.  What differs is how: one bgl_io per transport
 * (created while there is interest, freed when there is none, so that
 * loop.sock_sendfile() can watch the fd meanwhile), recv() into one buffer
 * shared by the module, and a queue of bytes objects written with one
 * sendmsg() (a gather write) when the socket is ready again.
 */
#include "transport.h"
#include "stream_data.h"

#include "structmember.h"

#ifndef _WIN32

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: Python ignores SIGPIPE */
#endif
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define GATHER_MAX (IOV_MAX < 1024 ? IOV_MAX : 1024)
#define RBUF_ALIGN 4096

/* asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES */
#define CONNLOST_WARN 5

typedef struct bglpy_transport {
    PyObject_HEAD
    /* The type derives from asyncio's _FlowControlMixin (a Transport), as
     * asyncio's own transport: isinstance() checks hold (sendfile's fallback
     * makes one).  Its instances are the object header and five slots:
     * BaseTransport's `_extra`, used as such, and the mixin's four, which
     * the members below replace (bglpy_transport_init() checks the size). */
    PyObject *extra;
    PyObject *mixin_slots[4];
    bglpy_state *st;
    bglpy_core *core;          /* strong; NULL for an instance not made by socket_transport() */
    PyObject *loop;            /* _loop: the bgloop.Loop, None after connection_lost */
    PyObject *sock;            /* _sock */
    PyObject *protocol;        /* _protocol */
    PyObject *server;          /* _server */
    PyObject *empty_waiter;    /* _empty_waiter (sendfile) */
    bgl_io *io;                /* NULL while there is no interest */
    int fd;
    unsigned want;             /* BGL_IO_READ | BGL_IO_WRITE wanted now */
    int buffered;              /* the protocol is an asyncio.BufferedProtocol */
    signed char direct;        /* stream_data.c's verdict on the protocol (0: none yet) */
    int protocol_connected;
    int closing, eof, paused, protocol_paused;
    int conn_lost;
    Py_ssize_t high, low;      /* write buffer limits */
    /* Pending writes: bytes objects q[head..tail), the first one sent up to
     * `off`; `size` bytes in all. */
    PyObject **q;
    Py_ssize_t head, tail, cap, off, size;
} bglpy_transport;

static int io_update(bglpy_transport *t);

/* ---- errors ---------------------------------------------------------------- */

static int is_exit(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit) ||
           PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

static PyObject *fetch_exc(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (!value) {
        Py_INCREF(Py_None);
        value = Py_None;
    }
    return value;
}

/* An exception escaped code run from the watcher's callback (asyncio: from
 * a Handle): SystemExit and KeyboardInterrupt end the iteration and are
 * re-raised by it; anything else goes to the loop's exception handler. */
static void callback_error(bglpy_transport *t)
{
    if (is_exit()) {
        bglpy_stash_exception(t->core);
        return;
    }
    PyObject *exc = fetch_exc();
    PyObject *ctx = PyDict_New();
    PyObject *msg = PyUnicode_FromFormat("Exception in callback %R", (PyObject *)t);
    PyObject *r = NULL;
    if (ctx && msg && PyDict_SetItemString(ctx, "message", msg) == 0 &&
        PyDict_SetItemString(ctx, "exception", exc) == 0 &&
        PyDict_SetItemString(ctx, "transport", (PyObject *)t) == 0 && t->loop &&
        t->loop != Py_None)
        r = PyObject_CallMethod(t->loop, "call_exception_handler", "O", ctx);
    Py_XDECREF(ctx);
    Py_XDECREF(msg);
    Py_DECREF(exc);
    if (r)
        Py_DECREF(r);
    else if (PyErr_Occurred()) {
        if (is_exit())
            bglpy_stash_exception(t->core);
        else
            PyErr_WriteUnraisable((PyObject *)t);
    }
}

/* The current exception, handled as asyncio's `except BaseException as
 * exc: self._fatal_error(exc, message)`.  0, or -1 with an exception set
 * (SystemExit/KeyboardInterrupt, or _fatal_error() failing). */
static int fatal_exc(bglpy_transport *t, PyObject *exc, const char *message)
{
    PyObject *r = PyObject_CallMethod((PyObject *)t, "_fatal_error", "Os", exc, message);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int fatal_error(bglpy_transport *t, const char *message)
{
    if (is_exit())
        return -1;
    PyObject *exc = fetch_exc();
    int r = fatal_exc(t, exc, message);
    Py_DECREF(exc);
    return r;
}

static int fatal_errno(bglpy_transport *t, int err, const char *message)
{
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return fatal_error(t, message);
}

/* A protocol's pause_writing()/resume_writing() failed: asyncio reports it
 * and goes on.  0, or -1 for SystemExit/KeyboardInterrupt. */
static int report_flow_error(bglpy_transport *t, const char *message)
{
    if (is_exit())
        return -1;
    PyObject *exc = fetch_exc();
    PyObject *ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", message, "exception", exc,
                                  "transport", (PyObject *)t, "protocol",
                                  t->protocol ? t->protocol : Py_None);
    Py_DECREF(exc);
    if (!t->loop || t->loop == Py_None) { /* connection lost meanwhile */
        Py_XDECREF(ctx);
        return 0;
    }
    PyObject *r = ctx ? PyObject_CallMethod(t->loop, "call_exception_handler", "O", ctx) : NULL;
    Py_XDECREF(ctx);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* asyncio's debug-mode messages ("%r pauses reading", ...), on its logger.
 * 0, or -1 with an exception set. */
static int debug_log(bglpy_transport *t, const char *fmt)
{
    if (!t->core->debug)
        return 0;
    PyObject *log = PyImport_ImportModule("asyncio.log");
    PyObject *logger = log ? PyObject_GetAttrString(log, "logger") : NULL;
    PyObject *r = logger ? PyObject_CallMethod(logger, "debug", "sO", fmt, (PyObject *)t) : NULL;
    Py_XDECREF(log);
    Py_XDECREF(logger);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int call_soon(bglpy_transport *t, const char *method, PyObject *arg)
{
    if (!t->loop || t->loop == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "transport is closed");
        return -1;
    }
    PyObject *m = PyObject_GetAttrString((PyObject *)t, method);
    if (!m)
        return -1;
    PyObject *r = PyObject_CallMethod(t->loop, "call_soon", "OO", m, arg);
    Py_DECREF(m);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---- the write queue ----------------------------------------------------- */

static int queue_push(bglpy_transport *t, PyObject *bytes)
{
    if (t->tail == t->cap) {
        if (t->head > 0) {
            memmove(t->q, t->q + t->head, (size_t)(t->tail - t->head) * sizeof(PyObject *));
            t->tail -= t->head;
            t->head = 0;
        } else {
            Py_ssize_t cap = t->cap ? t->cap * 2 : 4;
            PyObject **q = PyMem_Realloc(t->q, (size_t)cap * sizeof(PyObject *));
            if (!q) {
                PyErr_NoMemory();
                return -1;
            }
            t->q = q;
            t->cap = cap;
        }
    }
    Py_INCREF(bytes);
    t->q[t->tail++] = bytes;
    t->size += PyBytes_Size(bytes);
    return 0;
}

static void queue_clear(bglpy_transport *t)
{
    while (t->head < t->tail)
        Py_DECREF(t->q[t->head++]);
    t->head = t->tail = 0;
    t->off = 0;
    t->size = 0;
    if (t->cap > 4) { /* a burst's queue is not kept per idle connection */
        PyMem_Free(t->q);
        t->q = NULL;
        t->cap = 0;
    }
}

/* Drop n sent bytes from the front. */
static void queue_consume(bglpy_transport *t, Py_ssize_t n)
{
    t->size -= n;
    while (n > 0 && t->head < t->tail) {
        PyObject *b = t->q[t->head];
        Py_ssize_t left = PyBytes_Size(b) - t->off;
        if (n < left) {
            t->off += n;
            return;
        }
        n -= left;
        t->off = 0;
        t->head++;
        Py_DECREF(b);
    }
    if (t->head == t->tail)
        queue_clear(t);
}

/* One gather write of the queue.  Bytes sent, or -errno. */
static Py_ssize_t queue_send(bglpy_transport *t)
{
    struct iovec iov[GATHER_MAX];
    int n = 0;
    for (Py_ssize_t i = t->head; i < t->tail && n < GATHER_MAX; i++, n++) {
        char *p = PyBytes_AsString(t->q[i]);
        Py_ssize_t len = PyBytes_Size(t->q[i]);
        Py_ssize_t skip = i == t->head ? t->off : 0;
        iov[n].iov_base = p + skip;
        iov[n].iov_len = (size_t)(len - skip);
    }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t r;
    do
        r = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : (Py_ssize_t)r;
}

/* ---- flow control ------------------------------------------------------------ */

static int maybe_pause_protocol(bglpy_transport *t)
{
    if (t->size <= t->high || t->protocol_paused)
        return 0;
    t->protocol_paused = 1;
    PyObject *r = PyObject_CallMethod(t->protocol, "pause_writing", NULL);
    if (r) {
        Py_DECREF(r);
        return 0;
    }
    return report_flow_error(t, "protocol.pause_writing() failed");
}

static int maybe_resume_protocol(bglpy_transport *t)
{
    if (!t->protocol_paused || t->size > t->low)
        return 0;
    t->protocol_paused = 0;
    PyObject *r = PyObject_CallMethod(t->protocol, "resume_writing", NULL);
    if (r) {
        Py_DECREF(r);
        return 0;
    }
    return report_flow_error(t, "protocol.resume_writing() failed");
}

/* ---- the watcher ------------------------------------------------------------- */

static int set_want(bglpy_transport *t, unsigned bit, int on)
{
    unsigned want = on ? (t->want | bit) : (t->want & ~bit);
    if (want == t->want)
        return 0;
    t->want = want;
    return io_update(t);
}

static int do_close(bglpy_transport *t);

static void on_eof(bglpy_transport *t)
{
    if (debug_log(t, "%r received EOF") < 0) {
        callback_error(t);
        return;
    }
    PyObject *r = PyObject_CallMethod(t->protocol, "eof_received", NULL);
    if (!r) {
        if (fatal_error(t, "Fatal error: protocol.eof_received() call failed.") < 0)
            callback_error(t);
        return;
    }
    int keep_open = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (keep_open < 0) {
        callback_error(t);
        return;
    }
    if ((keep_open ? set_want(t, BGL_IO_READ, 0) : do_close(t)) < 0)
        callback_error(t);
}

/* recv() into a bytearray directly; into any other writable buffer through
 * the socket's recv_into() (the stable ABI of 3.10 has no buffer protocol).
 * Bytes received, -1 for "not ready", -2 with an exception set. */
static Py_ssize_t recv_into(bglpy_transport *t, PyObject *buf)
{
    if (PyByteArray_Check(buf)) {
        ssize_t n;
        do
            n = recv(t->fd, PyByteArray_AsString(buf), (size_t)PyByteArray_Size(buf), 0);
        while (n < 0 && errno == EINTR);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        PyErr_SetFromErrno(PyExc_OSError);
        return -2;
    }
    PyObject *r = PyObject_CallMethod(t->sock, "recv_into", "O", buf);
    if (!r) {
        if (PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
            PyErr_ExceptionMatches(PyExc_InterruptedError)) {
            PyErr_Clear();
            return -1;
        }
        return -2;
    }
    Py_ssize_t n = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    return n == -1 && PyErr_Occurred() ? -2 : n;
}

static void read_ready_buffered(bglpy_transport *t)
{
    PyObject *buf = PyObject_CallMethod(t->protocol, "get_buffer", "i", -1);
    if (buf) {
        Py_ssize_t len = PyObject_Size(buf);
        if (len == 0)
            PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    }
    if (PyErr_Occurred()) {
        Py_XDECREF(buf);
        if (fatal_error(t, "Fatal error: protocol.get_buffer() call failed.") < 0)
            callback_error(t);
        return;
    }
    Py_ssize_t n = recv_into(t, buf);
    Py_DECREF(buf);
    if (n == -1)
        return;
    if (n < 0) {
        if (fatal_error(t, "Fatal read error on socket transport") < 0)
            callback_error(t);
        return;
    }
    if (n == 0) {
        on_eof(t);
        return;
    }
    PyObject *r = PyObject_CallMethod(t->protocol, "buffer_updated", "n", (Py_ssize_t)n);
    if (r)
        Py_DECREF(r);
    else if (fatal_error(t, "Fatal error: protocol.buffer_updated() call failed.") < 0)
        callback_error(t);
}

static void read_ready(bglpy_transport *t)
{
    if (t->conn_lost)
        return;
    if (t->buffered) {
        read_ready_buffered(t);
        return;
    }
    char *rbuf = t->st->rbuf;
    ssize_t n;
    do
        n = recv(t->fd, rbuf, BGLPY_RECV_MAX, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK &&
            fatal_errno(t, errno, "Fatal read error on socket transport") < 0)
            callback_error(t);
        return;
    }
    if (n == 0) {
        on_eof(t);
        return;
    }
    if (bglpy_data_received(t->st, t->protocol, &t->direct, rbuf, n) < 0 &&
        fatal_error(t, "Fatal error: protocol.data_received() call failed.") < 0)
        callback_error(t);
}

static int waiter_done(bglpy_transport *t, PyObject *exc)
{
    if (t->empty_waiter == Py_None)
        return 0;
    PyObject *r = exc ? PyObject_CallMethod(t->empty_waiter, "set_exception", "O", exc)
                      : PyObject_CallMethod(t->empty_waiter, "set_result", "O", Py_None);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static void write_ready(bglpy_transport *t)
{
    if (t->conn_lost || t->head == t->tail)
        return;
    Py_ssize_t n = queue_send(t);
    if (n == -EAGAIN || n == -EWOULDBLOCK)
        return;
    if (n < 0) {
        set_want(t, BGL_IO_WRITE, 0);
        queue_clear(t);
        errno = (int)-n;
        PyErr_SetFromErrno(PyExc_OSError);
        PyObject *exc = fetch_exc();
        if (fatal_exc(t, exc, "Fatal write error on socket transport") < 0 ||
            waiter_done(t, exc) < 0)
            callback_error(t);
        Py_DECREF(exc);
        return;
    }
    queue_consume(t, n);
    if (maybe_resume_protocol(t) < 0) { /* may write more */
        callback_error(t);
        return;
    }
    if (t->head != t->tail)
        return;
    if (set_want(t, BGL_IO_WRITE, 0) < 0 || waiter_done(t, NULL) < 0) {
        callback_error(t);
        return;
    }
    if (t->closing) {
        PyObject *r = PyObject_CallMethod((PyObject *)t, "_call_connection_lost", "O", Py_None);
        if (r)
            Py_DECREF(r);
        else
            callback_error(t);
    } else if (t->eof) {
        shutdown(t->fd, SHUT_WR);
    }
}

static void io_fire(bgl_io *io, int fd, unsigned revents, void *userdata)
{
    (void)io;
    (void)fd;
    bglpy_transport *t = userdata;
    if (t->core->exc_type)
        return; /* level-triggered: it will be reported again */
    unsigned ev = revents & (BGL_IO_READ | BGL_IO_WRITE);
    if (revents & (BGL_IO_ERROR | BGL_IO_HUP))
        ev |= BGL_IO_READ | BGL_IO_WRITE;
    Py_INCREF(t); /* the protocol may drop the last reference */
    t->core->callbacks++;
    if ((ev & t->want & BGL_IO_READ))
        read_ready(t);
    if ((ev & t->want & BGL_IO_WRITE) && !t->core->exc_type)
        write_ready(t);
    Py_DECREF(t);
}

/* Free the watcher and the reference it held (as asyncio's selector holds
 * the transport's reader and writer callbacks).  The caller keeps t alive. */
static void io_drop(bglpy_transport *t)
{
    if (!t->io)
        return;
    bgl_io_free(t->io);
    t->io = NULL;
    Py_DECREF(t);
}

/* Make the watcher match t->want.  0, or -1 with OSError set. */
static int io_update(bglpy_transport *t)
{
    int r;
    if (!t->want) {
        io_drop(t);
        return 0;
    }
    if (t->io) {
        if ((r = bgl_io_set_events(t->io, t->want)) < 0)
            io_drop(t);
    } else if (bglpy_check_open(t->core) < 0) {
        t->want = 0;
        return -1;
    } else {
        bgl_io *io = NULL;
        if ((r = bgl_io_new(t->core->loop, t->fd, t->want, (bgl_io_cb)io_fire, t, &io)) == 0) {
            t->io = io;
            Py_INCREF(t);
        }
    }
    if (r < 0) {
        t->want = 0;
        bglpy_raise_errno(r, "watching the transport's socket");
        return -1;
    }
    return 0;
}

/* ---- methods ------------------------------------------------------------------- */

static int check_made(bglpy_transport *t)
{
    if (t->core)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "transport not initialised");
    return -1;
}

static int do_close(bglpy_transport *t)
{
    if (t->closing)
        return 0;
    t->closing = 1;
    if (set_want(t, BGL_IO_READ, 0) < 0)
        return -1;
    if (t->head == t->tail) {
        t->conn_lost++;
        if (set_want(t, BGL_IO_WRITE, 0) < 0)
            return -1;
        return call_soon(t, "_call_connection_lost", Py_None);
    }
    return 0;
}

static PyObject *tr_close(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0 || do_close(t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tr_force_close(bglpy_transport *t, PyObject *exc)
{
    if (check_made(t) < 0)
        return NULL;
    if (t->conn_lost)
        Py_RETURN_NONE;
    if (t->head != t->tail) {
        queue_clear(t);
        if (set_want(t, BGL_IO_WRITE, 0) < 0)
            return NULL;
    }
    if (!t->closing) {
        t->closing = 1;
        if (set_want(t, BGL_IO_READ, 0) < 0)
            return NULL;
    }
    t->conn_lost++;
    if (call_soon(t, "_call_connection_lost", exc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tr_abort(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return tr_force_close(t, Py_None);
}

static PyObject *tr_is_closing(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(t->closing);
}

static PyObject *tr_is_reading(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(!t->closing && !t->paused);
}

static PyObject *tr_pause_reading(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0)
        return NULL;
    if (t->closing || t->paused)
        Py_RETURN_NONE;
    t->paused = 1;
    if (set_want(t, BGL_IO_READ, 0) < 0 || debug_log(t, "%r pauses reading") < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tr_resume_reading(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0)
        return NULL;
    if (t->closing || !t->paused)
        Py_RETURN_NONE;
    t->paused = 0;
    if (set_want(t, BGL_IO_READ, 1) < 0 || debug_log(t, "%r resumes reading") < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* asyncio's _add_reader(fd, _read_ready) at connection start. */
static PyObject *tr_start_reading(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0)
        return NULL;
    if (t->closing || t->paused)
        Py_RETURN_NONE;
    if (bglpy_check_open(t->core) < 0 || set_want(t, BGL_IO_READ, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int check_writable(bglpy_transport *t, const char *what)
{
    if (check_made(t) < 0)
        return -1;
    if (t->eof) {
        PyErr_Format(PyExc_RuntimeError, "Cannot call %s() after write_eof()", what);
        return -1;
    }
    if (t->empty_waiter != Py_None) {
        PyErr_Format(PyExc_RuntimeError, "unable to %s; sendfile is in progress", what);
        return -1;
    }
    return 0;
}

/* Writes after the connection was lost are counted and dropped. */
static int lost_write(bglpy_transport *t)
{
    if (t->conn_lost >= CONNLOST_WARN) {
        PyObject *log = PyImport_ImportModule("asyncio.log");
        PyObject *logger = log ? PyObject_GetAttrString(log, "logger") : NULL;
        PyObject *r = logger ? PyObject_CallMethod(logger, "warning", "s",
                                                   "socket.send() raised exception.")
                             : NULL;
        Py_XDECREF(log);
        Py_XDECREF(logger);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    t->conn_lost++;
    return 0;
}

/* The bytes of data (bytes, bytearray or memoryview) at *p, *len; a
 * memoryview is copied into *keep (the stable ABI of 3.10 has no buffer
 * protocol).  0, or -1 with an exception set. */
static int data_view(PyObject *data, char **p, Py_ssize_t *len, PyObject **keep)
{
    *keep = NULL;
    if (PyByteArray_Check(data)) {
        *p = PyByteArray_AsString(data);
        *len = PyByteArray_Size(data);
        return 0;
    }
    if (!PyBytes_Check(data)) {
        if (!(*keep = data = PyBytes_FromObject(data)))
            return -1;
    }
    return PyBytes_AsStringAndSize(data, p, len);
}

static int check_data(PyObject *data)
{
    if (PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data))
        return 0;
    /* asyncio's own wording, which Python 3.14 changed. */
    const char *what = "a bytes-like object";
    PyObject *vi = PySys_GetObject("version_info"); /* borrowed */
    PyObject *minor = vi ? PySequence_GetItem(vi, 1) : NULL;
    if (minor) {
        if (PyLong_AsLong(minor) >= 14)
            what = "a bytes, bytearray, or memoryview object";
        Py_DECREF(minor);
    }
    PyErr_Clear();
    PyObject *tn = PyObject_GetAttrString((PyObject *)Py_TYPE(data), "__name__");
    if (tn) {
        PyErr_Format(PyExc_TypeError, "data argument must be %s, not %R", what, tn);
        Py_DECREF(tn);
    }
    return -1;
}

/* Queue data[off:] as a bytes object (the caller's buffer may change). */
static int queue_rest(bglpy_transport *t, PyObject *data, const char *p, Py_ssize_t len,
                      Py_ssize_t off)
{
    if (off == 0 && PyBytes_CheckExact(data))
        return queue_push(t, data);
    PyObject *b = PyBytes_FromStringAndSize(p + off, len - off);
    if (!b)
        return -1;
    int r = queue_push(t, b);
    Py_DECREF(b);
    return r;
}

static PyObject *tr_write(bglpy_transport *t, PyObject *data)
{
    if (check_data(data) < 0 || check_writable(t, "write") < 0)
        return NULL;
    struct {
        char *buf;
        Py_ssize_t len;
    } view;
    PyObject *keep;
    if (data_view(data, &view.buf, &view.len, &keep) < 0)
        return NULL;
    if (keep)
        data = keep;
    PyObject *res = NULL;
    if (view.len == 0) {
        res = Py_None;
        goto done;
    }
    if (t->conn_lost) {
        if (lost_write(t) == 0)
            res = Py_None;
        goto done;
    }
    Py_ssize_t sent = 0;
    if (t->head == t->tail) {
        ssize_t n;
        do
            n = send(t->fd, view.buf, (size_t)view.len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            if (fatal_errno(t, errno, "Fatal write error on socket transport") == 0)
                res = Py_None;
            goto done;
        }
        if (n > 0)
            sent = n;
        if (sent == view.len) {
            res = Py_None;
            goto done;
        }
        if (set_want(t, BGL_IO_WRITE, 1) < 0)
            goto done;
    }
    if (queue_rest(t, data, view.buf, view.len, sent) < 0 || maybe_pause_protocol(t) < 0)
        goto done;
    res = Py_None;
done:
    Py_XDECREF(keep);
    Py_XINCREF(res);
    return res;
}

static PyObject *tr_writelines(bglpy_transport *t, PyObject *list)
{
    if (check_writable(t, "writelines") < 0)
        return NULL;
    PyObject *seq = PySequence_List(list);
    if (!seq)
        return NULL;
    Py_ssize_t n = PyList_Size(seq);
    PyObject *res = NULL;
    int was_empty = t->head == t->tail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(seq, i);
        char *p;
        Py_ssize_t len;
        PyObject *keep;
        if (data_view(item, &p, &len, &keep) < 0)
            goto done;
        int r = len ? queue_rest(t, keep ? keep : item, p, len, 0) : 0;
        Py_XDECREF(keep);
        if (r < 0)
            goto done;
    }
    if (t->head == t->tail) {
        res = Py_None;
        goto done;
    }
    if (t->conn_lost) {
        queue_clear(t);
        if (lost_write(t) == 0)
            res = Py_None;
        goto done;
    }
    if (was_empty) {
        Py_ssize_t sent = queue_send(t);
        if (sent < 0 && sent != -EAGAIN && sent != -EWOULDBLOCK) {
            queue_clear(t);
            if (fatal_errno(t, (int)-sent, "Fatal write error on socket transport") == 0)
                res = Py_None;
            goto done;
        }
        if (sent > 0)
            queue_consume(t, sent);
        if (t->head != t->tail && set_want(t, BGL_IO_WRITE, 1) < 0)
            goto done;
    }
    if (maybe_pause_protocol(t) < 0)
        goto done;
    res = Py_None;
done:
    Py_DECREF(seq);
    Py_XINCREF(res);
    return res;
}

static PyObject *tr_write_eof(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0)
        return NULL;
    if (t->closing || t->eof)
        Py_RETURN_NONE;
    t->eof = 1;
    if (t->head == t->tail && shutdown(t->fd, SHUT_WR) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *tr_can_write_eof(bglpy_transport *t, PyObject *unused)
{
    (void)t;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *tr_get_write_buffer_size(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(t->size);
}

static PyObject *tr_get_write_buffer_limits(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nn)", t->low, t->high);
}

static PyObject *tr_set_write_buffer_limits(bglpy_transport *t, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *ho = Py_None, *lo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:set_write_buffer_limits", kwlist, &ho, &lo))
        return NULL;
    PyObject *high, *low;
    if (ho == Py_None && lo == Py_None)
        high = PyLong_FromLong(64 * 1024);
    else if (ho == Py_None) {
        PyObject *four = PyLong_FromLong(4);
        high = four ? PyNumber_Multiply(four, lo) : NULL;
        Py_XDECREF(four);
    } else {
        Py_INCREF(ho);
        high = ho;
    }
    if (!high)
        return NULL;
    if (lo == Py_None) {
        PyObject *four = PyLong_FromLong(4);
        low = four ? PyNumber_FloorDivide(high, four) : NULL;
        Py_XDECREF(four);
    } else {
        Py_INCREF(lo);
        low = lo;
    }
    if (!low) {
        Py_DECREF(high);
        return NULL;
    }
    PyObject *zero = PyLong_FromLong(0);
    int ok1 = PyObject_RichCompareBool(high, low, Py_GE);
    int ok2 = ok1 > 0 ? PyObject_RichCompareBool(low, zero, Py_GE) : 0;
    Py_DECREF(zero);
    PyObject *res = NULL;
    if (ok1 < 0 || ok2 < 0)
        goto done;
    if (!ok1 || !ok2) {
        PyErr_Format(PyExc_ValueError, "high (%R) must be >= low (%R) must be >= 0", high, low);
        goto done;
    }
    Py_ssize_t h = PyNumber_AsSsize_t(high, PyExc_OverflowError);
    Py_ssize_t l = h == -1 && PyErr_Occurred() ? -1 : PyNumber_AsSsize_t(low, PyExc_OverflowError);
    if (PyErr_Occurred())
        goto done;
    t->high = h;
    t->low = l;
    if (maybe_pause_protocol(t) < 0)
        goto done;
    Py_INCREF(Py_None);
    res = Py_None;
done:
    Py_DECREF(high);
    Py_DECREF(low);
    return res;
}

static PyObject *tr_set_protocol_state(bglpy_transport *t, PyObject *args)
{
    PyObject *protocol;
    int buffered;
    if (!PyArg_ParseTuple(args, "Op:_set_protocol", &protocol, &buffered))
        return NULL;
    PyObject *old = t->protocol;
    Py_INCREF(protocol);
    t->protocol = protocol;
    Py_XDECREF(old);
    t->buffered = buffered;
    t->direct = 0;
    t->protocol_connected = 1;
    Py_RETURN_NONE;
}

/* Stop watching (before the socket is closed) and drop the queue. */
static PyObject *tr_release(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    t->want = 0;
    io_drop(t);
    queue_clear(t);
    Py_RETURN_NONE;
}

static PyObject *tr_polling(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(OO)", (t->want & BGL_IO_READ) ? Py_True : Py_False,
                         (t->want & BGL_IO_WRITE) ? Py_True : Py_False);
}

static PyObject *tr_maybe_pause_protocol(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0 || maybe_pause_protocol(t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tr_maybe_resume_protocol(bglpy_transport *t, PyObject *unused)
{
    (void)unused;
    if (check_made(t) < 0 || maybe_resume_protocol(t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef tr_methods[] = {
    {"_maybe_pause_protocol", (PyCFunction)tr_maybe_pause_protocol, METH_NOARGS, NULL},
    {"_maybe_resume_protocol", (PyCFunction)tr_maybe_resume_protocol, METH_NOARGS, NULL},
    {"write", (PyCFunction)tr_write, METH_O, "write(data): send now, queue what the socket does not take."},
    {"writelines", (PyCFunction)tr_writelines, METH_O, "writelines(list_of_data)"},
    {"write_eof", (PyCFunction)tr_write_eof, METH_NOARGS, "Shut the write side down once the queue is sent."},
    {"can_write_eof", (PyCFunction)tr_can_write_eof, METH_NOARGS, "True."},
    {"close", (PyCFunction)tr_close, METH_NOARGS, "Close after the queue is sent."},
    {"abort", (PyCFunction)tr_abort, METH_NOARGS, "Close now, dropping the queue."},
    {"_force_close", (PyCFunction)tr_force_close, METH_O, "_force_close(exc)"},
    {"is_closing", (PyCFunction)tr_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)tr_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)tr_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction)tr_resume_reading, METH_NOARGS, NULL},
    {"_start_reading", (PyCFunction)tr_start_reading, METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)tr_get_write_buffer_size, METH_NOARGS, NULL},
    {"get_write_buffer_limits", (PyCFunction)tr_get_write_buffer_limits, METH_NOARGS, NULL},
    {"set_write_buffer_limits", (PyCFunction)(void (*)(void))tr_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, "set_write_buffer_limits(high=None, low=None)"},
    {"_set_protocol", (PyCFunction)tr_set_protocol_state, METH_VARARGS, NULL},
    {"_release", (PyCFunction)tr_release, METH_NOARGS, NULL},
    {"_polling", (PyCFunction)tr_polling, METH_NOARGS, "(reading, writing) watched now"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef tr_members[] = {
    {"_loop", T_OBJECT, offsetof(bglpy_transport, loop), 0, NULL},
    {"_sock", T_OBJECT, offsetof(bglpy_transport, sock), 0, NULL},
    {"_protocol", T_OBJECT, offsetof(bglpy_transport, protocol), 0, NULL},
    {"_extra", T_OBJECT, offsetof(bglpy_transport, extra), 0, NULL},
    {"_server", T_OBJECT, offsetof(bglpy_transport, server), 0, NULL},
    {"_sock_fd", T_INT, offsetof(bglpy_transport, fd), READONLY, NULL},
    {"_closing", T_INT, offsetof(bglpy_transport, closing), READONLY, NULL},
    {"_eof", T_INT, offsetof(bglpy_transport, eof), READONLY, NULL},
    {"_paused", T_INT, offsetof(bglpy_transport, paused), READONLY, NULL},
    {"_conn_lost", T_INT, offsetof(bglpy_transport, conn_lost), READONLY, NULL},
    {"_protocol_paused", T_INT, offsetof(bglpy_transport, protocol_paused), READONLY, NULL},
    {"_protocol_connected", T_INT, offsetof(bglpy_transport, protocol_connected), 0, NULL},
    {"_high_water", T_PYSSIZET, offsetof(bglpy_transport, high), READONLY, NULL},
    {"_low_water", T_PYSSIZET, offsetof(bglpy_transport, low), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* _empty_waiter: None or a future; the C side only tests it against None. */
static PyObject *tr_get_empty_waiter(bglpy_transport *t, void *c)
{
    (void)c;
    Py_INCREF(t->empty_waiter);
    return t->empty_waiter;
}

static int tr_set_empty_waiter(bglpy_transport *t, PyObject *v, void *c)
{
    (void)c;
    if (!v)
        v = Py_None;
    PyObject *old = t->empty_waiter;
    Py_INCREF(v);
    t->empty_waiter = v;
    Py_XDECREF(old);
    return 0;
}

static PyGetSetDef tr_getset[] = {
    {"_empty_waiter", (getter)tr_get_empty_waiter, (setter)tr_set_empty_waiter, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int tr_traverse(bglpy_transport *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT((PyObject *)t->core);
    Py_VISIT(t->loop);
    Py_VISIT(t->sock);
    Py_VISIT(t->protocol);
    Py_VISIT(t->extra);
    Py_VISIT(t->server);
    Py_VISIT(t->empty_waiter);
    return 0;
}

static int tr_clear(bglpy_transport *t)
{
    Py_CLEAR(t->loop);
    Py_CLEAR(t->sock);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->extra);
    Py_CLEAR(t->server);
    Py_CLEAR(t->empty_waiter);
    t->empty_waiter = Py_None;
    Py_INCREF(Py_None);
    return 0;
}

static void tr_dealloc(bglpy_transport *t)
{
    PyTypeObject *tp = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    /* A watcher holds a reference: there is none here. */
    queue_clear(t);
    PyMem_Free(t->q);
    t->q = NULL;
    tr_clear(t);
    Py_CLEAR(t->empty_waiter);
    Py_CLEAR(t->core);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(t);
    Py_DECREF(tp);
}

static PyObject *tr_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError,
                    "SocketTransport objects are created by _bgloop.socket_transport()");
    return NULL;
}

static PyType_Slot tr_slots[] = {
    {Py_tp_new, tr_new},
    {Py_tp_dealloc, tr_dealloc},
    {Py_tp_traverse, tr_traverse},
    {Py_tp_clear, tr_clear},
    {Py_tp_methods, tr_methods},
    {Py_tp_members, tr_members},
    {Py_tp_getset, tr_getset},
    {0, NULL},
};

static PyType_Spec tr_spec = {
    "bgloop._bgloop.SocketTransport",
    sizeof(bglpy_transport),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    tr_slots,
};

/* socket_transport(cls, core, loop, sock, protocol, buffered): a transport
 * of class cls (SocketTransport or a subclass) on sock's fd, not watching
 * it yet (_start_reading() does). */
static PyObject *mod_socket_transport(PyObject *module, PyObject *args)
{
    bglpy_state *st = bglpy_module_state(module);
    PyObject *cls, *core, *loop, *sock, *protocol;
    int buffered;
    if (!PyArg_ParseTuple(args, "O!O!OOOp:socket_transport", &PyType_Type, &cls, st->Core, &core,
                          &loop, &sock, &protocol, &buffered))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)cls, st->SocketTransport)) {
        PyErr_SetString(PyExc_TypeError, "socket_transport(): cls must subclass SocketTransport");
        return NULL;
    }
    if (bglpy_check_open((bglpy_core *)core) < 0)
        return NULL;
    PyObject *fdo = PyObject_CallMethod(sock, "fileno", NULL);
    if (!fdo)
        return NULL;
    long fd = PyLong_AsLong(fdo);
    Py_DECREF(fdo);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)cls, Py_tp_alloc);
    bglpy_transport *t = (bglpy_transport *)alloc((PyTypeObject *)cls, 0);
    if (!t)
        return NULL;
    t->st = st;
    Py_INCREF(core);
    t->core = (bglpy_core *)core;
    Py_INCREF(loop);
    t->loop = loop;
    Py_INCREF(sock);
    t->sock = sock;
    Py_INCREF(protocol);
    t->protocol = protocol;
    t->buffered = buffered;
    t->protocol_connected = 1;
    Py_INCREF(Py_None);
    t->server = Py_None;
    Py_INCREF(Py_None);
    t->empty_waiter = Py_None;
    t->fd = (int)fd;
#if defined(SO_NOSIGPIPE)
    { /* no MSG_NOSIGNAL there: a closed peer must not kill a host that
       * does not ignore SIGPIPE */
        int one = 1;
        setsockopt(t->fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    t->high = 64 * 1024;
    t->low = 16 * 1024;
    return (PyObject *)t;
}

static PyMethodDef transport_functions[] = {
    {"socket_transport", mod_socket_transport, METH_VARARGS,
     "socket_transport(cls, core, loop, sock, protocol, buffered) -> transport of class cls"},
    {NULL, NULL, 0, NULL},
};

/* asyncio.transports._FlowControlMixin, if its instances are laid out as
 * bglpy_transport begins (header and five slots; no dict, no weakref list);
 * else None: then there is no C transport and bgloop.Loop keeps asyncio's. */
static PyObject *transport_base(void)
{
    PyObject *mod = PyImport_ImportModule("asyncio.transports");
    PyObject *base = mod ? PyObject_GetAttrString(mod, "_FlowControlMixin") : NULL;
    Py_XDECREF(mod);
    if (!base)
        return NULL;
    static const struct {
        const char *name;
        Py_ssize_t want;
    } layout[] = {
        {"__basicsize__", offsetof(bglpy_transport, mixin_slots) + 4 * sizeof(PyObject *)},
        {"__itemsize__", 0},
        {"__dictoffset__", 0},
        {"__weakrefoffset__", 0},
    };
    for (size_t i = 0; i < sizeof layout / sizeof layout[0]; i++) {
        PyObject *v = PyObject_GetAttrString(base, layout[i].name);
        Py_ssize_t got = v ? PyLong_AsSsize_t(v) : -1;
        Py_XDECREF(v);
        if (got == -1 && PyErr_Occurred()) {
            Py_DECREF(base);
            return NULL;
        }
        if (got != layout[i].want) {
            Py_DECREF(base);
            Py_RETURN_NONE;
        }
    }
    return base;
}

int bglpy_transport_init(PyObject *module, bglpy_state *st)
{
    PyObject *base = transport_base();
    if (!base)
        return -1;
    if (base == Py_None) {
        Py_DECREF(base);
        return 0;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &tr_spec, base);
    Py_DECREF(base);
    if (!type)
        return -1;
    st->SocketTransport = (PyTypeObject *)type; /* the state's reference */
    if (PyModule_AddType(module, st->SocketTransport) < 0)
        return -1;
    /* Page-aligned: the kernel copies into a buffer off a cache-line
     * boundary (malloc() gives 16 bytes) several times slower; at 16 KiB
     * per recv() that copy was most of a round trip's CPU time. */
    void *rbuf = NULL;
    if (posix_memalign(&rbuf, RBUF_ALIGN, BGLPY_RECV_MAX) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    st->rbuf = rbuf; /* free()d with the module state */
    return PyModule_AddFunctions(module, transport_functions);
}

#else /* _WIN32: asyncio's transports (the proactor's) serve there */

int bglpy_transport_init(PyObject *module, bglpy_state *st)
{
    (void)module;
    (void)st;
    return 0;
}

#endif
