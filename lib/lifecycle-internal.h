/* lifecycle-internal.h - glue between the task registry, resource stacks and
 * the service manager.  Not installed. */
#ifndef BGLOOP_LIFECYCLE_INTERNAL_H
#define BGLOOP_LIFECYCLE_INTERNAL_H

#include "bgloop/resource.h"
#include "bgloop/service.h"
#include "bgloop/task.h"

/* fn(ud, 0) is called whenever the number of active tasks of `reg` went
 * down, so that a keep-alive can notice "nothing left" without polling, and
 * fn(ud, 1) when the registry is freed.  Several managers may watch one
 * registry.  bgl__tasks_watch() is 0 or -ENOMEM; bgl__tasks_unwatch()
 * removes the watch added with the same fn and ud. */
int bgl__tasks_watch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud);
void bgl__tasks_unwatch(bgl_tasks *reg, void (*fn)(void *ud, int gone), void *ud);

/* Stacks owned by a service or manager: bgl_resources_free() refuses them,
 * the owner learns about completed closes through `closed` (called before
 * the public closed callback) and, if `pushed` is not NULL, about every
 * push. */
int bgl__resources_new_owned(bgl_loop *loop, void (*closed)(bgl_resources *rs, void *ud),
                             void (*pushed)(bgl_resources *rs, void *ud), void *ud,
                             bgl_resources **out);
void bgl__resources_free_owned(bgl_resources *rs);

/* printf into a fresh heap string (NULL on failure). */
char *bgl__strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strdup that accepts NULL. */
char *bgl__strdup0(const char *s);

#endif /* BGLOOP_LIFECYCLE_INTERNAL_H */
