/* services.h - what the services parts of the extension share: services.c
 * (Services), resources.c (pushed Python objects), tasks.c (Tasks).
 */
#ifndef BGLPY_SERVICES_H
#define BGLPY_SERVICES_H

#include "bglpy.h"

#include "bgloop/resource.h"
#include "bgloop/task.h"

/* A str argument as UTF-8, or NULL for None when allow_none.  TypeError
 * names `what` and the type it got.  0, or -1 with an exception set. */
int bglpy_str_arg(PyObject *obj, const char *what, int allow_none, const char **out);

/* The registry behind a Tasks object, or NULL if obj is not one. */
bgl_tasks *bglpy_tasks_registry(bglpy_state *st, PyObject *obj);

/* Push obj on rs; closing it calls closer(obj, done) with a ResourceDone
 * `done` the closer calls once obj is closed.  0, or -1 with an exception
 * set. */
int bglpy_resource_push(bglpy_state *st, bgl_resources *rs, const char *label, PyObject *obj,
                        PyObject *closer);

/* resources.c's part of bglpy_services_init(): the ResourceDone type. */
int bglpy_resources_init(PyObject *module, bglpy_state *st);

#endif /* BGLPY_SERVICES_H */
