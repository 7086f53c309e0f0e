/* lifecycle-internal.h - glue between the task registry, resource stacks and
 * the service manager.  Not installed.  Every function shared between these
 * files is bgli_* and hidden: only the bgl_* API leaves the library. */
#ifndef BGLOOP_LIFECYCLE_INTERNAL_H
#define BGLOOP_LIFECYCLE_INTERNAL_H

#include "bgloop/resource.h"
#include "bgloop/service.h"
#include "bgloop/task.h"
#include "internal.h"

/* fn(ud, 0) is called whenever the number of live tasks of `reg` went down
 * (finished, freed or abandoned), so that a manager can notice "nothing
 * left" without polling, and fn(ud, 1) when the registry is freed.  Several
 * managers may watch one registry.  bgli_tasks_watch() is 0 or -ENOMEM;
 * bgli_tasks_unwatch() removes the watch added with the same fn and ud. */
BGL_INTERNAL int bgli_tasks_watch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud);
BGL_INTERNAL void bgli_tasks_unwatch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud);

/* Entries matching owner and name (NULL: any) that are active and not
 * abandoned. */
BGL_INTERNAL int bgli_tasks_live(const bgl_tasks *reg, const char *owner, const char *name);
/* bgl_task_cancel() every matching active entry; with only_new, only those
 * not asked before and not abandoned.  The number asked, or -ENOMEM. */
BGL_INTERNAL int bgli_tasks_cancel(bgl_tasks *reg, const char *owner, const char *name,
                                  int only_new);
/* Abandon every matching live entry; returns how many. */
BGL_INTERNAL int bgli_tasks_abandon(bgl_tasks *reg, const char *owner, const char *name);

/* Stacks owned by a service or manager: bgl_resources_free() refuses them,
 * the owner learns about completed closes through `closed` (called before
 * the public closed callback) and, if `pushed` is not NULL, about every
 * push. */
BGL_INTERNAL int bgli_resources_new_owned(bgl_loop *loop,
                                         void (*closed)(bgl_resources *rs, void *ud),
                                         void (*pushed)(bgl_resources *rs, void *ud), void *ud,
                                         bgl_resources **out);
BGL_INTERNAL void bgli_resources_free_owned(bgl_resources *rs);

/* printf into a fresh heap string (NULL on failure). */
BGL_INTERNAL char *bgli_strdupf(const char *fmt, ...) BGL_PRINTF(1, 2);

#endif /* BGLOOP_LIFECYCLE_INTERNAL_H */
