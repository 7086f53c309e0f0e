/* bgloop/resource.h - LIFO stacks of cleanup entries.
 *
 * A resource stack (bgl_resources) remembers what was opened - sockets,
 * servers, files, child processes - each as an entry holding an object and
 * the function that closes it, and closes everything in reverse order of
 * registration when its scope ends.  Scopes (see service.h):
 *
 *   - per service:  bgl_service_resources(), closed when the service ends,
 *                   however it ends, once its registry entries are wound up
 *                   (entries pushed while it is neither running nor wanted
 *                   are closed in the next iteration);
 *   - per owner:    bgl_services_owner_resources(), closed when a stop of
 *                   that owner (or of everything) has stopped its services
 *                   and wound up its registry entries;
 *   - per manager:  bgl_services_loop_resources(), closed when a stop of
 *                   everything has stopped all services and closed the
 *                   owner stacks;
 * (a service's stack is bounded by its close timeout, owner and manager
 * stacks by the largest of the services concerned, 5 s if there are none;
 * see BGL_CLOSE_TIMEOUT_AUTO in service.h);
 *   - standalone:   bgl_resources_new(), closed when the caller says so.
 *
 * CLOSING
 *
 * bgl_resources_close() pops the entries newest first and calls each close
 * function.  A close function returns
 *
 *   0                    closed;
 *   a negative errno     closing failed (reported; closing goes on);
 *   BGL_RESOURCE_ASYNC   closing was started and will complete later: the
 *                        host calls bgl_resource_done() when it has (it may
 *                        also call it before returning BGL_RESOURCE_ASYNC).
 *
 * The next entry is closed only after the previous one completed, so later
 * entries may rely on the ones below them being still open.  Entries pushed
 * while closing are closed too (they are on top).
 *
 * The whole close is bounded by a timeout.  When it expires, the entry being
 * waited for is reported as timed out and abandoned, and every remaining
 * entry is still closed - its close function is called - but no longer
 * waited for: one that does not complete at once counts as timed out.
 * Closing therefore always completes.
 *
 * When closing completes, the stack's closed callback gets a report (how
 * many entries closed, failed, timed out, and the error texts); the report
 * stays queryable with bgl_resources_get_report() until the next close.
 * Closing is idempotent: closing a stack that is closing does nothing;
 * closing an empty stack completes at once (the callback is called before
 * bgl_resources_close() returns).  A stack can be used again after it was
 * closed.
 *
 * ENTRY LIFETIME
 *
 * An entry is freed once its close completed (or, for an abandoned entry,
 * once bgl_resource_done() was finally called - a host that got
 * BGL_RESOURCE_ASYNC must call it exactly once, even late).  Its release
 * function, if any, is called with the object right before it is freed - the
 * place to drop a reference.  bgl_resource_done() on an abandoned entry
 * returns -ETIMEDOUT and frees it.
 *
 * ERRORS: -EINVAL (NULL, bad value), -EBUSY (free while entries are left or
 * closing is in progress), -EALREADY (done twice), -ENOMEM.
 */
#ifndef BGLOOP_RESOURCE_H
#define BGLOOP_RESOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "bgloop/common.h"
#include "bgloop/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_resources bgl_resources;
typedef struct bgl_resource bgl_resource;

/* Return value of a close function whose close completes later. */
#define BGL_RESOURCE_ASYNC 1

/* Close `object`; see CLOSING for the return value.  `res` is the token to
 * pass to bgl_resource_done() for an asynchronous close. */
typedef int (*bgl_resource_close_fn)(bgl_resource *res, void *object);
/* Drop the last reference to `object` (see ENTRY LIFETIME). */
typedef void (*bgl_resource_release_fn)(void *object);

/* What the last close did. */
typedef struct bgl_resources_report {
    size_t closed;      /* entries that closed without error */
    size_t failed;      /* entries whose close reported an error */
    size_t timed_out;   /* entries that did not complete before the timeout */
    const char *errors; /* "'name': text; ..." for each failed or timed-out
                           entry, or NULL if there was none; owned by the
                           stack, valid until the next close completes or
                           the stack is freed */
} bgl_resources_report;

typedef void (*bgl_resources_closed_cb)(bgl_resources *rs, const bgl_resources_report *report,
                                        void *userdata);

/* Create an empty standalone stack on `loop` (the loop provides the timer of
 * the close timeout).  0 and *out, -EINVAL, -ENOMEM. */
BGL_EXPORT int bgl_resources_new(bgl_loop *loop, bgl_resources **out);

/* Free a standalone stack.  0; -EINVAL (NULL, or a stack owned by a service
 * or manager); -EBUSY if entries are left or closing is in progress (close
 * it first: nothing is ever dropped without being closed). */
BGL_EXPORT int bgl_resources_free(bgl_resources *rs);

/* Push an entry.  name (copied; may be NULL) identifies it in reports.  close
 * must not be NULL; release may be.  0 and *out if out is not NULL (the
 * token is only needed by close functions, which get it anyway); -EINVAL;
 * -ENOMEM (nothing is pushed; the object is not released). */
BGL_EXPORT int bgl_resource_push(bgl_resources *rs, const char *name, void *object,
                                 bgl_resource_close_fn close, bgl_resource_release_fn release,
                                 bgl_resource **out);

/* Complete an asynchronous close (see CLOSING).  err is 0 for success or a
 * negative errno; error (may be NULL) is a text for the report.  0 when the
 * completion was recorded; -ETIMEDOUT if the entry had been abandoned (it is
 * freed now); -EALREADY if the entry is not waiting for completion; -EINVAL;
 * -ENOMEM (only when called from inside the close function with an error
 * text that could not be copied: nothing was recorded, call it again).
 * Must not be called again after it returned 0 or -ETIMEDOUT. */
BGL_EXPORT int bgl_resource_done(bgl_resource *res, int err, const char *error);

/* Start closing (see CLOSING).  timeout_ns bounds the whole close: negative =
 * no bound, 0 = do not wait for asynchronous closes at all.  0 (also when
 * closing was already in progress, which is left as it is), -EINVAL, or
 * -ENOMEM (the timeout could not be armed; nothing was closed). */
BGL_EXPORT int bgl_resources_close(bgl_resources *rs, int64_t timeout_ns);

/* Set the callback called when a close completes (NULL to remove).  0 or
 * -EINVAL. */
BGL_EXPORT int bgl_resources_set_closed_cb(bgl_resources *rs, bgl_resources_closed_cb cb,
                                           void *userdata);

/* The number of entries not yet closed (including one being waited for), or
 * -EINVAL. */
BGL_EXPORT int bgl_resources_count(const bgl_resources *rs);

/* 1 while closing is in progress, 0 if not, -EINVAL. */
BGL_EXPORT int bgl_resources_is_closing(const bgl_resources *rs);

/* Copy the report of the last completed close (all zero / NULL if none;
 * a close in progress does not change it until it completes).  0 or
 * -EINVAL. */
BGL_EXPORT int bgl_resources_get_report(const bgl_resources *rs, bgl_resources_report *report);

/* The entry's name (NULL if none, or res is NULL). */
BGL_EXPORT const char *bgl_resource_name(const bgl_resource *res);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_RESOURCE_H */
