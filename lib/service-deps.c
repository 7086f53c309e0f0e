/* service-deps.c - the dependency graph: lookup, readiness gating, reverse
 * stop order, activity, and validation (unknown names, cycles). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle-internal.h"
#include "service-internal.h"

bgl_service *svc_lookup(const bgl_services *mgr, const char *name)
{
    for (size_t i = 0; i < mgr->n; i++)
        if (strcmp(mgr->svcs[i]->name, name) == 0)
            return mgr->svcs[i];
    return NULL;
}

int svc_is_up(const bgl_service *s)
{
    return !s->ending && (s->state == BGL_SERVICE_STARTING || s->state == BGL_SERVICE_RUNNING);
}

int svc_is_busy(const bgl_service *s)
{
    return s->ending || s->state == BGL_SERVICE_STARTING || s->state == BGL_SERVICE_RUNNING ||
           s->state == BGL_SERVICE_STOPPING;
}

/* The recursive walks below follow dependencies, which were checked to be
 * acyclic when the services were wanted; `depth` still bounds them, in case
 * services were removed and re-added with other dependencies since. */
static int should_be_down(const bgl_service *s, size_t depth);

static int going_down(const bgl_service *s, size_t depth)
{
    return svc_is_up(s) && should_be_down(s, depth);
}

static int should_be_down(const bgl_service *s, size_t depth)
{
    if (!s->want || depth > s->mgr->n)
        return 1;
    for (size_t i = 0; i < s->n_deps; i++) {
        const bgl_service *d = svc_lookup(s->mgr, s->deps[i]);
        if (!d || d->state != BGL_SERVICE_RUNNING || d->ending || going_down(d, depth + 1))
            return 1;
    }
    return 0;
}

int svc_should_be_down(const bgl_service *s)
{
    return should_be_down(s, 0);
}

int svc_can_start(const bgl_service *s)
{
    return s->want && !s->restart_pending && !svc_is_busy(s) && !should_be_down(s, 0);
}

static int depends_on(const bgl_service *t, const bgl_service *s)
{
    for (size_t i = 0; i < t->n_deps; i++)
        if (strcmp(t->deps[i], s->name) == 0)
            return 1;
    return 0;
}

int svc_has_busy_dependents(const bgl_service *s)
{
    const bgl_services *mgr = s->mgr;
    for (size_t i = 0; i < mgr->n; i++) {
        const bgl_service *t = mgr->svcs[i];
        if (t != s && svc_is_busy(t) && depends_on(t, s))
            return 1;
    }
    return 0;
}

static int is_active(const bgl_service *s, size_t depth)
{
    if (svc_is_busy(s) || s->restart_pending || bgl_resources_is_closing(s->res) > 0)
        return 1;
    if (!s->want || depth > s->mgr->n)
        return 0;
    /* Wanted and waiting: active only if what it waits for is coming. */
    for (size_t i = 0; i < s->n_deps; i++) {
        const bgl_service *d = svc_lookup(s->mgr, s->deps[i]);
        if (!d || !is_active(d, depth + 1))
            return 0;
    }
    return 1;
}

int svc_is_active(const bgl_service *s)
{
    return is_active(s, 0);
}

const char *svc_waiting_for(const bgl_service *s)
{
    if (!s->want || s->restart_pending || svc_is_busy(s))
        return NULL;
    for (size_t i = 0; i < s->n_deps; i++) {
        const bgl_service *d = svc_lookup(s->mgr, s->deps[i]);
        if (!d || d->state != BGL_SERVICE_RUNNING || d->ending)
            return s->deps[i];
    }
    return NULL;
}

/* ---- validation ---------------------------------------------------------- */

enum { WHITE = 0, GREY, BLACK };

typedef struct walk {
    bgl_services *mgr;
    const bgl_service **path;   /* the current DFS path, for naming a cycle */
    size_t depth;
} walk;

static void set_error(bgl_services *mgr, char *text)
{
    free(mgr->last_error);
    mgr->last_error = text;
}

static char *cycle_text(const walk *w, const bgl_service *back)
{
    size_t from = 0;
    while (w->path[from] != back)
        from++;
    char *s = bgl__strdupf("dependency cycle: %s", w->path[from]->name);
    for (size_t i = from + 1; s && i < w->depth; i++) {
        char *t = bgl__strdupf("%s -> %s", s, w->path[i]->name);
        free(s);
        s = t;
    }
    if (s) {
        char *t = bgl__strdupf("%s -> %s", s, back->name);
        free(s);
        s = t;
    }
    return s;
}

static int visit(walk *w, bgl_service *s)
{
    if (s->mark == BLACK)
        return 0;
    if (s->mark == GREY) {
        set_error(w->mgr, cycle_text(w, s));
        return -ELOOP;
    }
    s->mark = GREY;
    w->path[w->depth++] = s;
    for (size_t i = 0; i < s->n_deps; i++) {
        bgl_service *d = svc_lookup(w->mgr, s->deps[i]);
        if (!d) {
            set_error(w->mgr, bgl__strdupf("service '%s' depends on unknown service '%s'",
                                           s->name, s->deps[i]));
            return -ENOENT;
        }
        int r = visit(w, d);
        if (r < 0)
            return r;
    }
    w->depth--;
    s->mark = BLACK;
    return 0;
}

int svc_want_closure(bgl_services *mgr, bgl_service **roots, size_t n)
{
    if (!mgr->n)
        return 0;
    walk w = {.mgr = mgr, .depth = 0};
    w.path = malloc(mgr->n * sizeof *w.path);
    if (!w.path)
        return -ENOMEM;
    for (size_t i = 0; i < mgr->n; i++)
        mgr->svcs[i]->mark = WHITE;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = visit(&w, roots[i]);
    free(w.path);
    if (r < 0)
        return r;
    /* Every BLACK service is a root or a dependency of one. */
    for (size_t i = 0; i < mgr->n; i++) {
        bgl_service *s = mgr->svcs[i];
        if (s->mark == BLACK && !s->want) {
            s->want = 1;
            svc_restart_reset(s);
        }
    }
    return 0;
}
