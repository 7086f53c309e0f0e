/* resource.c - LIFO resource stacks (see bgloop/resource.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/resource.h"
#include "lifecycle-internal.h"

typedef enum entry_phase {
    E_QUEUED,     /* on the stack */
    E_IN_CLOSE,   /* its close function is running */
    E_WAITING,    /* asynchronous close, waiting for bgl_resource_done() */
    E_ABANDONED,  /* timed out; detached, freed by a late bgl_resource_done() */
} entry_phase;

struct bgl_resource {
    bgl_resources *rs;
    bgl_resource *below;          /* the next older entry */
    char *name;
    void *object;
    bgl_resource_close_fn close;
    bgl_resource_release_fn release;
    entry_phase phase;
    int done_early;               /* done called from inside close */
    int done_err;
    char *done_text;
};

struct bgl_resources {
    bgl_loop *loop;
    bgl_timer *timer;             /* close timeout */
    bgl_resource *top;
    size_t queued;                /* entries on the stack */
    bgl_resource *current;        /* popped, being closed or waited for */
    int closing;
    int deadline_passed;
    int advancing;
    bgl_resources_report report;  /* of the close in progress */
    char *errors;                 /* its error list */
    bgl_resources_report last;    /* of the last completed close */
    char *last_errors;
    int owned;
    void (*owner_fn)(bgl_resources *rs, void *ud);
    void (*owner_push_fn)(bgl_resources *rs, void *ud);
    void *owner_ud;
    bgl_resources_closed_cb cb;
    void *cb_ud;
};

static void on_timeout(bgl_timer *timer, void *userdata);

static int stack_new(bgl_loop *loop, bgl_resources **out)
{
    bgl_resources *rs = calloc(1, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    int r = bgl_timer_new(loop, on_timeout, rs, &rs->timer);
    if (r < 0) {
        free(rs);
        return r;
    }
    rs->loop = loop;
    *out = rs;
    return 0;
}

int bgl_resources_new(bgl_loop *loop, bgl_resources **out)
{
    if (!loop || !out)
        return -EINVAL;
    return stack_new(loop, out);
}

int bgli_resources_new_owned(bgl_loop *loop, void (*closed)(bgl_resources *rs, void *ud),
                             void (*pushed)(bgl_resources *rs, void *ud), void *ud,
                             bgl_resources **out)
{
    int r = stack_new(loop, out);
    if (r == 0) {
        (*out)->owned = 1;
        (*out)->owner_fn = closed;
        (*out)->owner_push_fn = pushed;
        (*out)->owner_ud = ud;
    }
    return r;
}

static void stack_destroy(bgl_resources *rs)
{
    bgl_timer_free(rs->timer);
    free(rs->errors);
    free(rs->last_errors);
    free(rs);
}

void bgli_resources_free_owned(bgl_resources *rs)
{
    if (rs)
        stack_destroy(rs);
}

int bgl_resources_free(bgl_resources *rs)
{
    if (!rs || rs->owned)
        return -EINVAL;
    if (rs->queued || rs->current || rs->closing)
        return -EBUSY;
    stack_destroy(rs);
    return 0;
}

int bgl_resource_push(bgl_resources *rs, const char *name, void *object,
                      bgl_resource_close_fn close, bgl_resource_release_fn release,
                      bgl_resource **out)
{
    if (!rs || !close)
        return -EINVAL;
    bgl_resource *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    if (name && !(e->name = strdup(name))) {
        free(e);
        return -ENOMEM;
    }
    e->rs = rs;
    e->object = object;
    e->close = close;
    e->release = release;
    e->phase = E_QUEUED;
    e->below = rs->top;
    rs->top = e;
    rs->queued++;
    if (out)
        *out = e;
    if (rs->owner_push_fn)
        rs->owner_push_fn(rs, rs->owner_ud);
    return 0;
}

static void entry_free(bgl_resource *e)
{
    if (e->release)
        e->release(e->object);
    free(e->name);
    free(e->done_text);
    free(e);
}

/* Append "'name': text" to the report's error list. */
static void report_error(bgl_resources *rs, const bgl_resource *e, const char *text)
{
    const char *name = e->name ? e->name : "(unnamed)";
    char *s = rs->errors ? bgli_strdupf("%s; '%s': %s", rs->errors, name, text)
                         : bgli_strdupf("'%s': %s", name, text);
    if (s) {   /* out of memory: the counts still tell */
        free(rs->errors);
        rs->errors = s;
    }
}

static void record(bgl_resources *rs, const bgl_resource *e, int err, const char *text)
{
    if (err == 0) {
        rs->report.closed++;
        return;
    }
    rs->report.failed++;
    /* bgl_strerror(): thread-safe, and copes with INT_MIN (no -INT_MIN). */
    report_error(rs, e, text && *text ? text : bgl_strerror(err));
}

static void abandon(bgl_resources *rs, bgl_resource *e)
{
    rs->report.timed_out++;
    report_error(rs, e, "close timed out");
    e->phase = E_ABANDONED;
    e->rs = NULL;
}

static void finish(bgl_resources *rs)
{
    rs->closing = 0;
    rs->deadline_passed = 0;
    bgl_timer_stop(rs->timer);
    free(rs->last_errors);
    rs->last_errors = rs->errors;
    rs->errors = NULL;
    rs->last = rs->report;
    rs->last.errors = rs->last_errors;
    bgl_resources_report rep = rs->last;
    /* The owner first (it may be the service manager finishing a stop); the
     * public callback last, since it may free a standalone stack. */
    if (rs->owner_fn)
        rs->owner_fn(rs, rs->owner_ud);
    if (rs->cb)
        rs->cb(rs, &rep, rs->cb_ud);
}

/* Close entries until one must be waited for or the stack is empty.
 * Iterative, so that completions reported from inside close functions do
 * not recurse. */
static void advance(bgl_resources *rs)
{
    if (rs->advancing)
        return;
    rs->advancing = 1;
    while (!rs->current && rs->top) {
        bgl_resource *e = rs->top;
        rs->top = e->below;
        rs->queued--;
        e->below = NULL;
        rs->current = e;
        e->phase = E_IN_CLOSE;
        int r = e->close(e, e->object);
        if (r != BGL_RESOURCE_ASYNC || e->done_early) {
            if (r == BGL_RESOURCE_ASYNC)
                record(rs, e, e->done_err, e->done_text);
            else
                record(rs, e, r > 0 ? -EINVAL : r, NULL);
            rs->current = NULL;
            entry_free(e);
            continue;
        }
        e->phase = E_WAITING;
        if (rs->deadline_passed) {
            abandon(rs, e);
            rs->current = NULL;
        }
    }
    rs->advancing = 0;
    if (rs->closing && !rs->current && !rs->top)
        finish(rs);
}

int bgl_resource_done(bgl_resource *res, int err, const char *error)
{
    if (!res || err > 0)
        return -EINVAL;
    switch (res->phase) {
    case E_ABANDONED:
        entry_free(res);
        return -ETIMEDOUT;
    case E_IN_CLOSE:
        if (res->done_early)
            return -EALREADY;
        if (error && !(res->done_text = strdup(error)))
            return -ENOMEM;
        res->done_early = 1;
        res->done_err = err;
        return 0;
    case E_WAITING: {
        bgl_resources *rs = res->rs;
        record(rs, res, err, error);
        rs->current = NULL;
        entry_free(res);
        advance(rs);
        return 0;
    }
    default:
        return -EALREADY;
    }
}

static void on_timeout(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_resources *rs = userdata;
    rs->deadline_passed = 1;
    if (rs->current && rs->current->phase == E_WAITING) {
        abandon(rs, rs->current);
        rs->current = NULL;
    }
    advance(rs);
}

int bgl_resources_close(bgl_resources *rs, int64_t timeout_ns)
{
    if (!rs)
        return -EINVAL;
    if (rs->closing)
        return 0;
    free(rs->errors);
    rs->errors = NULL;
    memset(&rs->report, 0, sizeof rs->report);
    rs->closing = 1;
    rs->deadline_passed = timeout_ns == 0;
    if (timeout_ns > 0) {
        int r = bgl_timer_start(rs->timer, (uint64_t)timeout_ns, 0);
        if (r < 0) {
            rs->closing = 0;
            return r;
        }
    }
    advance(rs);
    return 0;
}

int bgl_resources_set_closed_cb(bgl_resources *rs, bgl_resources_closed_cb cb, void *userdata)
{
    if (!rs)
        return -EINVAL;
    rs->cb = cb;
    rs->cb_ud = userdata;
    return 0;
}

int bgl_resources_count(const bgl_resources *rs)
{
    if (!rs)
        return -EINVAL;
    return (int)(rs->queued + (rs->current ? 1 : 0));
}

int bgl_resources_is_closing(const bgl_resources *rs)
{
    return rs ? rs->closing : -EINVAL;
}

int bgl_resources_get_report(const bgl_resources *rs, bgl_resources_report *report)
{
    if (!rs || !report)
        return -EINVAL;
    *report = rs->last;
    return 0;
}

const char *bgl_resource_name(const bgl_resource *res)
{
    return res ? res->name : NULL;
}
