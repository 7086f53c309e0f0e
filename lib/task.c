/* task.c - the task registry (see bgloop/task.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgloop/task.h"
#include "lifecycle-internal.h"

typedef struct done_cb {
    bgl_task_done_fn fn;
    void *userdata;
} done_cb;

typedef struct watcher {
    void (*fn)(void *ud, int gone);
    void *ud;
} watcher;

struct bgl_task {
    bgl_tasks *reg;
    bgl_task *prev, *next;     /* registry list, creation order */
    char *owner, *name, *error;
    bgl_task_state state;
    bgl_task_cancel_fn cancel;
    void *userdata;
    done_cb *cbs;
    size_t n_cbs;
    unsigned pins;             /* > 0 while one of its callbacks runs */
    int freed;                 /* bgl_task_free() while pinned */
    int cancel_asked;          /* bgl_task_cancel() was called */
    int abandoned;             /* no longer awaited nor counted as active */
};

struct bgl_tasks {
    bgl_task *head, *tail;
    size_t counts[BGL_TASK_CANCELLED + 1];
    size_t total;
    size_t abandoned;          /* active entries that were abandoned */
    unsigned depth;            /* > 0 while a callback runs */
    watcher *watch;            /* service managers counting these tasks */
    size_t n_watch;
};

static int is_active(bgl_task_state s)
{
    return s == BGL_TASK_PENDING || s == BGL_TASK_RUNNING;
}

static void notify_watch(bgl_tasks *reg);

int bgl_tasks_new(bgl_tasks **out)
{
    if (!out)
        return -EINVAL;
    bgl_tasks *reg = calloc(1, sizeof *reg);
    if (!reg)
        return -ENOMEM;
    *out = reg;
    return 0;
}

static void task_destroy(bgl_task *t)
{
    free(t->owner);
    free(t->name);
    free(t->error);
    free(t->cbs);
    free(t);
}

int bgl_tasks_free(bgl_tasks *reg)
{
    if (!reg)
        return -EINVAL;
    if (reg->depth)
        return -EBUSY;
    for (size_t i = 0; i < reg->n_watch; i++)
        reg->watch[i].fn(reg->watch[i].ud, 1);
    free(reg->watch);
    bgl_task *t = reg->head;
    while (t) {
        bgl_task *next = t->next;
        task_destroy(t);
        t = next;
    }
    free(reg);
    return 0;
}

int bgli_tasks_watch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud)
{
    watcher *v = realloc(reg->watch, (reg->n_watch + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    v[reg->n_watch].fn = fn;
    v[reg->n_watch].ud = ud;
    reg->watch = v;
    reg->n_watch++;
    return 0;
}

void bgli_tasks_unwatch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud)
{
    for (size_t i = 0; i < reg->n_watch; i++) {
        if (reg->watch[i].fn == fn && reg->watch[i].ud == ud) {
            memmove(&reg->watch[i], &reg->watch[i + 1],
                    (reg->n_watch - i - 1) * sizeof *reg->watch);
            reg->n_watch--;
            return;
        }
    }
}

static int owner_matches(const bgl_task *t, const char *owner)
{
    return !owner || strcmp(t->owner, owner) == 0;
}

/* Active and still awaited: what "is anything left?" counts. */
static int is_live(const bgl_task *t)
{
    return is_active(t->state) && !t->abandoned;
}

static int matches(const bgl_task *t, const char *owner, const char *name)
{
    return owner_matches(t, owner) && (!name || strcmp(t->name, name) == 0);
}

int bgl_tasks_active(const bgl_tasks *reg, const char *owner)
{
    if (!reg)
        return -EINVAL;
    if (!owner)
        return (int)(reg->counts[BGL_TASK_PENDING] + reg->counts[BGL_TASK_RUNNING] -
                     reg->abandoned);
    return bgli_tasks_live(reg, owner, NULL);
}

int bgli_tasks_live(const bgl_tasks *reg, const char *owner, const char *name)
{
    int n = 0;
    for (const bgl_task *t = reg->head; t; t = t->next)
        n += matches(t, owner, name) && is_live(t);
    return n;
}

int bgli_tasks_abandon(bgl_tasks *reg, const char *owner, const char *name)
{
    int n = 0;
    for (bgl_task *t = reg->head; t; t = t->next) {
        if (matches(t, owner, name) && is_live(t)) {
            t->abandoned = 1;
            reg->abandoned++;
            n++;
        }
    }
    if (n)
        notify_watch(reg);
    return n;
}

int bgl_tasks_count(const bgl_tasks *reg, const char *owner, bgl_task_counts *counts)
{
    if (!reg || !counts)
        return -EINVAL;
    size_t c[BGL_TASK_CANCELLED + 1] = {0};
    size_t total = 0, abandoned = 0;
    for (const bgl_task *t = reg->head; t; t = t->next) {
        if (owner_matches(t, owner)) {
            c[t->state]++;
            total++;
            abandoned += is_active(t->state) && t->abandoned;
        }
    }
    counts->pending = c[BGL_TASK_PENDING];
    counts->running = c[BGL_TASK_RUNNING];
    counts->done = c[BGL_TASK_DONE];
    counts->failed = c[BGL_TASK_FAILED];
    counts->cancelled = c[BGL_TASK_CANCELLED];
    counts->total = total;
    counts->abandoned = abandoned;
    return 0;
}

int bgl_tasks_list(const bgl_tasks *reg, const char *owner, bgl_task **out, size_t cap)
{
    if (!reg || (cap && !out))
        return -EINVAL;
    size_t n = 0;
    for (const bgl_task *t = reg->head; t; t = t->next) {
        if (!owner_matches(t, owner))
            continue;
        if (n < cap)
            out[n] = (bgl_task *)t;
        n++;
    }
    return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

int bgl_tasks_find(const bgl_tasks *reg, const char *owner, const char *name, bgl_task **out)
{
    if (!reg || !name || !out)
        return -EINVAL;
    for (bgl_task *t = reg->head; t; t = t->next) {
        if (owner_matches(t, owner) && strcmp(t->name, name) == 0) {
            *out = t;
            return 0;
        }
    }
    return -ENOENT;
}

int bgl_task_new(bgl_tasks *reg, const char *owner, const char *name, bgl_task_cancel_fn cancel,
                 void *userdata, bgl_task **out)
{
    if (!reg || !owner || !*owner || !name || !*name || !out)
        return -EINVAL;
    bgl_task *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->owner = strdup(owner);
    t->name = strdup(name);
    if (!t->owner || !t->name) {
        task_destroy(t);
        return -ENOMEM;
    }
    t->reg = reg;
    t->state = BGL_TASK_PENDING;
    t->cancel = cancel;
    t->userdata = userdata;
    t->prev = reg->tail;
    if (reg->tail)
        reg->tail->next = t;
    else
        reg->head = t;
    reg->tail = t;
    reg->counts[BGL_TASK_PENDING]++;
    reg->total++;
    *out = t;
    return 0;
}

static void unlink_task(bgl_task *t)
{
    bgl_tasks *reg = t->reg;
    if (t->prev)
        t->prev->next = t->next;
    else
        reg->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        reg->tail = t->prev;
    t->prev = t->next = NULL;
    reg->counts[t->state]--;
    reg->total--;
    if (t->abandoned && is_active(t->state))
        reg->abandoned--;
}

/* Pinning keeps an entry's memory alive while a callback about it runs, so
 * that the callback may free it. */
static void pin(bgl_task *t)
{
    t->pins++;
    t->reg->depth++;
}

static void unpin(bgl_task *t)
{
    t->reg->depth--;
    if (--t->pins == 0 && t->freed)
        task_destroy(t);
}

/* The watchers only schedule work on their loop: they cannot change the
 * list while it is walked. */
static void notify_watch(bgl_tasks *reg)
{
    for (size_t i = 0; i < reg->n_watch; i++)
        reg->watch[i].fn(reg->watch[i].ud, 0);
}

int bgl_task_set_running(bgl_task *task)
{
    if (!task || task->freed)
        return -EINVAL;
    if (task->state != BGL_TASK_PENDING)
        return -EALREADY;
    task->reg->counts[BGL_TASK_PENDING]--;
    task->reg->counts[BGL_TASK_RUNNING]++;
    task->state = BGL_TASK_RUNNING;
    return 0;
}

int bgl_task_finish(bgl_task *task, bgl_task_state state, const char *error)
{
    if (!task || task->freed)
        return -EINVAL;
    if (state != BGL_TASK_DONE && state != BGL_TASK_FAILED && state != BGL_TASK_CANCELLED)
        return -EINVAL;
    if (!is_active(task->state))
        return -EALREADY;
    char *err = NULL;
    if (error && !(err = strdup(error)))
        return -ENOMEM;
    bgl_tasks *reg = task->reg;
    free(task->error);
    task->error = err;
    reg->counts[task->state]--;
    reg->counts[state]++;
    if (task->abandoned)
        reg->abandoned--;
    task->state = state;
    pin(task);
    /* No callback can be added to a final entry, so n_cbs is stable; a
     * callback freeing the entry only marks it (see pin()). */
    for (size_t i = 0; i < task->n_cbs; i++)
        task->cbs[i].fn(task, state, task->cbs[i].userdata);
    unpin(task);
    notify_watch(reg);
    return 0;
}

int bgl_task_cancel(bgl_task *task)
{
    if (!task || task->freed)
        return -EINVAL;
    if (!is_active(task->state))
        return -EALREADY;
    task->cancel_asked = 1;
    if (!task->cancel)
        return bgl_task_finish(task, BGL_TASK_CANCELLED, NULL);
    pin(task);
    task->cancel(task, task->userdata);
    unpin(task);
    return 0;
}

int bgl_tasks_cancel(bgl_tasks *reg, const char *owner)
{
    if (!reg)
        return -EINVAL;
    return bgli_tasks_cancel(reg, owner, NULL, 0);
}

static int cancel_wanted(const bgl_task *t, const char *owner, const char *name, int only_new)
{
    return matches(t, owner, name) && is_active(t->state) &&
           (!only_new || (!t->cancel_asked && !t->abandoned));
}

int bgli_tasks_cancel(bgl_tasks *reg, const char *owner, const char *name, int only_new)
{
    size_t n = 0;
    for (bgl_task *t = reg->head; t; t = t->next)
        n += cancel_wanted(t, owner, name, only_new);
    if (!n)
        return 0;
    /* Snapshot first: hooks may create and free entries while we go. */
    bgl_task **snap = malloc(n * sizeof *snap);
    if (!snap)
        return -ENOMEM;
    size_t k = 0;
    for (bgl_task *t = reg->head; t && k < n; t = t->next) {
        if (cancel_wanted(t, owner, name, only_new)) {
            snap[k++] = t;
            pin(t);
        }
    }
    int asked = 0;
    for (size_t i = 0; i < k; i++) {
        if (!snap[i]->freed && is_active(snap[i]->state) && bgl_task_cancel(snap[i]) == 0)
            asked++;
    }
    for (size_t i = 0; i < k; i++)
        unpin(snap[i]);
    free(snap);
    return asked;
}

int bgl_task_add_done_cb(bgl_task *task, bgl_task_done_fn cb, void *userdata)
{
    if (!task || !cb || task->freed)
        return -EINVAL;
    if (!is_active(task->state))
        return -EALREADY;
    done_cb *cbs = realloc(task->cbs, (task->n_cbs + 1) * sizeof *cbs);
    if (!cbs)
        return -ENOMEM;
    cbs[task->n_cbs].fn = cb;
    cbs[task->n_cbs].userdata = userdata;
    task->cbs = cbs;
    task->n_cbs++;
    return 0;
}

int bgl_task_free(bgl_task *task)
{
    if (!task || task->freed)
        return -EINVAL;
    bgl_tasks *reg = task->reg;
    int was_active = is_active(task->state);
    unlink_task(task);
    if (task->pins)
        task->freed = 1;
    else
        task_destroy(task);
    if (was_active)
        notify_watch(reg);
    return 0;
}

int bgl_task_abandon(bgl_task *task)
{
    if (!task || task->freed)
        return -EINVAL;
    if (!is_active(task->state))
        return -EALREADY;
    if (!task->abandoned) {
        task->abandoned = 1;
        task->reg->abandoned++;
        notify_watch(task->reg);
    }
    return 0;
}

int bgl_task_is_abandoned(const bgl_task *task)
{
    return task ? task->abandoned : -EINVAL;
}

const char *bgl_task_owner(const bgl_task *task)
{
    return task ? task->owner : NULL;
}

const char *bgl_task_name(const bgl_task *task)
{
    return task ? task->name : NULL;
}

const char *bgl_task_error(const bgl_task *task)
{
    return task ? task->error : NULL;
}

int bgl_task_get_state(const bgl_task *task)
{
    return task ? (int)task->state : -EINVAL;
}

void *bgl_task_userdata(const bgl_task *task)
{
    return task ? task->userdata : NULL;
}

const char *bgl_task_state_name(int state)
{
    switch (state) {
    case BGL_TASK_PENDING: return "pending";
    case BGL_TASK_RUNNING: return "running";
    case BGL_TASK_DONE: return "done";
    case BGL_TASK_FAILED: return "failed";
    case BGL_TASK_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}
