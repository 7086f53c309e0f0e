/* bgloop/task.h - the task registry.
 *
 * A registry (bgl_tasks) records named units of work, each with an owner - a
 * string such as an add-on's name - so that a host can list, count and cancel
 * "everything add-on X started", and can tell cheaply whether any work is
 * left.  The registry does not run anything itself: the host (C code, or the
 * Python binding registering each asyncio task) creates an entry for its own
 * unit of work and drives its state.
 *
 * STATES
 *
 *   BGL_TASK_PENDING    created, not started yet (the initial state);
 *   BGL_TASK_RUNNING    the host reported that the work started;
 *   BGL_TASK_DONE       finished successfully;
 *   BGL_TASK_FAILED     finished with an error (an error text may be kept);
 *   BGL_TASK_CANCELLED  finished because it was cancelled.
 *
 * TRANSITIONS
 *
 *   pending -> running                          bgl_task_set_running()
 *   pending | running -> done|failed|cancelled  bgl_task_finish()
 *
 * DONE, FAILED and CANCELLED are final: an entry never leaves them.
 * "Pending" and "running" together are the *active* tasks.
 *
 * CANCELLATION
 *
 * bgl_task_cancel() asks for cancellation: it calls the entry's cancel hook,
 * which should make the work stop and later call bgl_task_finish() (usually
 * with BGL_TASK_CANCELLED; the hook may also call it at once).  An entry
 * without a cancel hook has nothing to interrupt and is finished as cancelled
 * right away.
 *
 * ABANDONED ENTRIES
 *
 * An active entry whose work ignored cancellation can be *abandoned*
 * (bgl_task_abandon(); the service manager does it when a stop's deadline
 * passed, see service.h): it keeps its state and may still finish, but it
 * is no longer awaited - bgl_tasks_active() does not count it, so a task
 * that swallows cancellation cannot keep a process alive forever.
 * bgl_tasks_count() reports how many active entries are abandoned.
 *
 * COMPLETION CALLBACKS
 *
 * bgl_task_add_done_cb() adds callbacks called, in the order they were
 * added, when the entry reaches a final state.  They run synchronously from
 * bgl_task_finish().
 *
 * LIFETIME
 *
 * The host owns each entry: it stays in the registry, in whatever state,
 * until bgl_task_free().  Callbacks may create and free entries - including
 * the one being reported - and may call any function of this header.
 * bgl_tasks_free() frees the registry and every entry still in it.
 *
 * ERRORS are negative errno values as everywhere in libbgloop:
 *   -EINVAL    NULL pointer, empty owner or name, a state that is not allowed;
 *   -EALREADY  the entry is already in a final state (or already running);
 *   -ENOENT    no such entry;
 *   -EBUSY     the registry is being freed from one of its own callbacks;
 *   -ENOMEM    out of memory.
 */
#ifndef BGLOOP_TASK_H
#define BGLOOP_TASK_H

#include <stddef.h>
#include "bgloop/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_tasks bgl_tasks;
typedef struct bgl_task bgl_task;

typedef enum bgl_task_state {
    BGL_TASK_PENDING = 0,
    BGL_TASK_RUNNING,
    BGL_TASK_DONE,
    BGL_TASK_FAILED,
    BGL_TASK_CANCELLED,
} bgl_task_state;

/* The host's "interrupt this work" (see CANCELLATION). */
typedef void (*bgl_task_cancel_fn)(bgl_task *task, void *userdata);
/* Called once the entry reached `state` (a final state). */
typedef void (*bgl_task_done_fn)(bgl_task *task, bgl_task_state state, void *userdata);

/* Per-state counts, see bgl_tasks_count(). */
typedef struct bgl_task_counts {
    size_t pending, running, done, failed, cancelled;
    size_t total;   /* all entries */
    size_t abandoned; /* pending or running entries that were abandoned
                         (already included in pending/running) */
} bgl_task_counts;

/* ---- the registry -------------------------------------------------------- */

/* Create an empty registry.  0 and *out, -EINVAL, -ENOMEM. */
BGL_EXPORT int bgl_tasks_new(bgl_tasks **out);

/* Free the registry and every entry in it (their done callbacks are not
 * called).  0, -EINVAL, or -EBUSY when called from one of the registry's own
 * callbacks (cancel hook, done callback). */
BGL_EXPORT int bgl_tasks_free(bgl_tasks *reg);

/* The number of *active* (pending or running) entries of `owner`, or of all
 * owners when owner is NULL, not counting abandoned ones: the cheap "is
 * anything left?" query (O(1) for all owners).  >= 0, or -EINVAL if reg is
 * NULL. */
BGL_EXPORT int bgl_tasks_active(const bgl_tasks *reg, const char *owner);

/* Fill *counts for `owner` (NULL: all owners).  0 or -EINVAL. */
BGL_EXPORT int bgl_tasks_count(const bgl_tasks *reg, const char *owner, bgl_task_counts *counts);

/* Store up to `cap` entries of `owner` (NULL: all), in creation order, in
 * out[0..cap-1] (out may be NULL when cap is 0).  Returns how many entries
 * match (which may exceed cap), or -EINVAL. */
BGL_EXPORT int bgl_tasks_list(const bgl_tasks *reg, const char *owner, bgl_task **out, size_t cap);

/* The first entry, in creation order, with this owner (NULL: any) and name.
 * 0 and *out, -EINVAL, -ENOENT. */
BGL_EXPORT int bgl_tasks_find(const bgl_tasks *reg, const char *owner, const char *name,
                              bgl_task **out);

/* Request cancellation (bgl_task_cancel()) of every active entry of `owner`
 * (NULL: all owners; abandoned entries included), in creation order.
 * Entries created by the cancel hooks meanwhile are not cancelled by this
 * call.  Returns the number of entries asked to cancel, -EINVAL or
 * -ENOMEM. */
BGL_EXPORT int bgl_tasks_cancel(bgl_tasks *reg, const char *owner);

/* ---- entries ------------------------------------------------------------- */

/* Register a unit of work in state PENDING.  owner and name are copied and
 * must be non-empty; names need not be unique.  cancel may be NULL (see
 * CANCELLATION); userdata is passed to it.  0 and *out, -EINVAL, -ENOMEM. */
BGL_EXPORT int bgl_task_new(bgl_tasks *reg, const char *owner, const char *name,
                            bgl_task_cancel_fn cancel, void *userdata, bgl_task **out);

/* PENDING -> RUNNING.  0; -EALREADY if running or final; -EINVAL. */
BGL_EXPORT int bgl_task_set_running(bgl_task *task);

/* Move an active entry to a final state (DONE, FAILED or CANCELLED; anything
 * else is -EINVAL) and call its done callbacks.  error (may be NULL) is kept
 * as the entry's error text.  0; -EALREADY if already final; -EINVAL;
 * -ENOMEM (the entry is left as it was). */
BGL_EXPORT int bgl_task_finish(bgl_task *task, bgl_task_state state, const char *error);

/* Request cancellation (see CANCELLATION).  0 when the request was passed on
 * (or the entry was finished as cancelled); -EALREADY if already final;
 * -EINVAL. */
BGL_EXPORT int bgl_task_cancel(bgl_task *task);

/* Abandon an active entry (see ABANDONED ENTRIES): no longer counted by
 * bgl_tasks_active().  0 (also if already abandoned); -EALREADY if final;
 * -EINVAL. */
BGL_EXPORT int bgl_task_abandon(bgl_task *task);

/* 1 if the entry was abandoned, 0 if not, -EINVAL. */
BGL_EXPORT int bgl_task_is_abandoned(const bgl_task *task);

/* Add a completion callback (see COMPLETION CALLBACKS).  0; -EALREADY if the
 * entry is already final (the callback is not added); -EINVAL; -ENOMEM. */
BGL_EXPORT int bgl_task_add_done_cb(bgl_task *task, bgl_task_done_fn cb, void *userdata);

/* Remove the entry from its registry and free it; no callback is called.
 * Allowed in any state, also from the entry's own callbacks (it is then
 * released when they return).  0 or -EINVAL. */
BGL_EXPORT int bgl_task_free(bgl_task *task);

/* Accessors.  The strings are owned by the entry and valid until it is
 * freed; NULL if task is NULL.  The state is returned as a value >= 0, or
 * -EINVAL.  bgl_task_error() is NULL when no error text was given. */
BGL_EXPORT const char *bgl_task_owner(const bgl_task *task);
BGL_EXPORT const char *bgl_task_name(const bgl_task *task);
BGL_EXPORT const char *bgl_task_error(const bgl_task *task);
BGL_EXPORT int bgl_task_get_state(const bgl_task *task);
BGL_EXPORT void *bgl_task_userdata(const bgl_task *task);

/* "pending", "running", "done", "failed", "cancelled"; "unknown" otherwise. */
BGL_EXPORT const char *bgl_task_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_TASK_H */
