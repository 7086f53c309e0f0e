/* service-deps.c - the dependency graph: names resolved once to pointers
 * (a hash table by name, dependents kept per service), readiness gating
 * kept up to date incrementally, activity and validation (unknown names,
 * cycles) as iterative walks that visit every service at most once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service-internal.h"

typedef struct frame {
    bgl_service *s;
    size_t i;                     /* next dependency to look at */
} frame;

static int walk_reserve(bgl_services *mgr, size_t n)
{
    if (n <= mgr->walk_cap)
        return 0;
    size_t cap = mgr->walk_cap ? mgr->walk_cap : 16;
    while (cap < n)
        cap *= 2;
    frame *v = realloc(mgr->walk_stack, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    mgr->walk_stack = v;
    mgr->walk_cap = cap;
    return 0;
}

/* ---- names --------------------------------------------------------------- */

static size_t hash_name(const char *s)
{
    size_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

bgl_service *bgli_svc_lookup(const bgl_services *mgr, const char *name)
{
    if (!mgr->table_cap)
        return NULL;
    size_t mask = mgr->table_cap - 1;
    for (size_t i = hash_name(name) & mask; mgr->table[i]; i = (i + 1) & mask)
        if (strcmp(mgr->table[i]->name, name) == 0)
            return mgr->table[i];
    return NULL;
}

static void table_put(bgl_service **table, size_t cap, bgl_service *s)
{
    size_t i = hash_name(s->name) & (cap - 1);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = s;
}

static int rehash(bgl_services *mgr)
{
    size_t cap = 16;
    while (cap < 2 * (mgr->n + 1))
        cap *= 2;
    bgl_service **t = calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < mgr->n; i++)
        table_put(t, cap, mgr->svcs[i]);
    free(mgr->table);
    mgr->table = t;
    mgr->table_cap = cap;
    return 0;
}

/* Room for one more service in the table and the walk stack. */
static int reserve_one(bgl_services *mgr)
{
    if (walk_reserve(mgr, mgr->n + 1) < 0)
        return -ENOMEM;
    if (2 * (mgr->n + 1) > mgr->table_cap)
        return rehash(mgr);
    return 0;
}

static void table_delete(bgl_services *mgr, const bgl_service *s)
{
    size_t mask = mgr->table_cap - 1;
    size_t i = hash_name(s->name) & mask;
    while (mgr->table[i] != s)
        i = (i + 1) & mask;
    mgr->table[i] = NULL;
    /* Backward shift: keep every later entry of the probe run reachable. */
    for (size_t j = (i + 1) & mask; mgr->table[j]; j = (j + 1) & mask) {
        size_t k = hash_name(mgr->table[j]->name) & mask;
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            mgr->table[i] = mgr->table[j];
            mgr->table[j] = NULL;
            i = j;
        }
    }
}

/* ---- edges --------------------------------------------------------------- */

static int link_dep(bgl_service *t, size_t i, bgl_service *d)
{
    if (d->n_rdeps == d->cap_rdeps) {
        size_t cap = d->cap_rdeps ? 2 * d->cap_rdeps : 4;
        bgl_service **v = realloc(d->rdeps, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        d->rdeps = v;
        d->cap_rdeps = cap;
    }
    d->rdeps[d->n_rdeps++] = t;
    t->deps[i] = d;
    t->n_unres--;
    t->mgr->n_unresolved--;
    if (d->ok) {
        t->n_bad_deps--;
        bgli_svc_refresh(t);
    }
    return 0;
}

int bgli_deps_insert(bgl_services *mgr, bgl_service *s)
{
    if (reserve_one(mgr) < 0)
        return -ENOMEM;
    table_put(mgr->table, mgr->table_cap, s);
    s->n_unres = s->n_deps;
    s->n_bad_deps = s->n_deps;
    mgr->n_unresolved += s->n_deps;
    return 0;
}

static void resolve_one(bgl_services *mgr, bgl_service *t)
{
    for (size_t i = 0; i < t->n_deps && t->n_unres; i++) {
        if (t->deps[i])
            continue;
        bgl_service *d = bgli_svc_lookup(mgr, t->dep_names[i]);
        if (d)
            link_dep(t, i, d);
    }
}

/* Resolve every dependency still unknown.  A failed link stays unknown
 * until the next try (before a start, at the next reconcile). */
void bgli_deps_resolve(bgl_services *mgr)
{
    for (size_t k = 0; k < mgr->n && mgr->n_unresolved; k++)
        resolve_one(mgr, mgr->svcs[k]);
}

/* A service was added: its own dependencies, then those of services that
 * may have waited for its name. */
void bgli_deps_added(bgl_services *mgr, bgl_service *s)
{
    resolve_one(mgr, s);
    if (mgr->n_unresolved > s->n_unres)
        bgli_deps_resolve(mgr);
}

void bgli_deps_detach(bgl_services *mgr, bgl_service *s)
{
    for (size_t i = 0; i < s->n_deps; i++) {
        bgl_service *d = s->deps[i];
        if (!d)
            continue;
        for (size_t j = 0; j < d->n_rdeps; j++) {
            if (d->rdeps[j] == s) {
                d->rdeps[j] = d->rdeps[--d->n_rdeps];
                break;
            }
        }
    }
    mgr->n_unresolved -= s->n_unres;
    /* One rdeps entry per edge: clear one matching edge each. */
    for (size_t j = 0; j < s->n_rdeps; j++) {
        bgl_service *t = s->rdeps[j];
        for (size_t i = 0; i < t->n_deps; i++) {
            if (t->deps[i] == s) {
                t->deps[i] = NULL;
                t->n_unres++;
                mgr->n_unresolved++;
                if (s->ok) {
                    t->n_bad_deps++;
                    bgli_svc_refresh(t);
                }
                break;
            }
        }
    }
    s->n_rdeps = 0;
    table_delete(mgr, s);
}

/* ---- readiness ------------------------------------------------------------- */

int bgli_svc_is_up(const bgl_service *s)
{
    return !s->ending && (s->state == BGL_SERVICE_STARTING || s->state == BGL_SERVICE_RUNNING);
}

int bgli_svc_is_busy(const bgl_service *s)
{
    return s->ending || s->state == BGL_SERVICE_STARTING || s->state == BGL_SERVICE_RUNNING ||
           s->state == BGL_SERVICE_STOPPING;
}

static int compute_ok(const bgl_service *s)
{
    return s->state == BGL_SERVICE_RUNNING && !s->ending && s->want && s->n_bad_deps == 0;
}

/* Propagate a change of s to the dependents' counts: each service changes
 * at most once per call, so this is linear in the edges that change. */
void bgli_svc_refresh(bgl_service *s)
{
    bgl_services *mgr = s->mgr;
    if (compute_ok(s) == s->ok)
        return;
    frame *stack = mgr->walk_stack;
    size_t sp = 0;
    stack[sp++].s = s;
    s->queued = 1;
    while (sp) {
        bgl_service *x = stack[--sp].s;
        x->queued = 0;
        int ok = compute_ok(x);
        if (ok == x->ok)
            continue;
        x->ok = ok;
        for (size_t j = 0; j < x->n_rdeps; j++) {
            bgl_service *t = x->rdeps[j];
            if (ok)
                t->n_bad_deps--;
            else
                t->n_bad_deps++;
            if (!t->queued && compute_ok(t) != t->ok) {
                t->queued = 1;
                stack[sp++].s = t;
            }
        }
    }
}

int bgli_svc_should_be_down(const bgl_service *s)
{
    return !s->want || s->n_bad_deps > 0;
}

int bgli_svc_can_start(const bgl_service *s)
{
    return s->want && !s->restart_pending && !bgli_svc_is_busy(s) && s->n_bad_deps == 0;
}

int bgli_svc_has_busy_dependents(const bgl_service *s)
{
    for (size_t j = 0; j < s->n_rdeps; j++)
        if (s->rdeps[j] != s && bgli_svc_is_busy(s->rdeps[j]))
            return 1;
    return 0;
}

const char *bgli_svc_waiting_for(const bgl_service *s)
{
    if (!s->want || s->restart_pending || bgli_svc_is_busy(s))
        return NULL;
    for (size_t i = 0; i < s->n_deps; i++) {
        const bgl_service *d = s->deps[i];
        if (!d || d->state != BGL_SERVICE_RUNNING || d->ending)
            return s->dep_names[i];
    }
    return NULL;
}

/* ---- activity ---------------------------------------------------------------- */

int bgli_stack_busy(const bgl_resources *rs)
{
    return bgl_resources_count(rs) > 0 || bgl_resources_is_closing(rs) > 0;
}

static int own_activity(const bgl_service *s)
{
    return bgli_svc_is_busy(s) || s->restart_pending || bgl_resources_is_closing(s->res) > 0;
}

void bgli_walk_begin(const bgl_services *mgr)
{
    ((bgl_services *)mgr)->walk_gen++;
}

enum { V_OPEN = -1, V_NO = 0, V_YES = 1 };

/* Active: busy, restart pending, closing, or wanted and every dependency is
 * itself active (what it waits for is coming).  A dependency cycle reads as
 * "not coming". */
int bgli_svc_is_active(const bgl_service *root)
{
    bgl_services *mgr = root->mgr;
    uint64_t gen = mgr->walk_gen;
    bgl_service *r = (bgl_service *)root;
    if (r->walk_gen == gen)
        return r->walk_val == V_YES;
    r->walk_gen = gen;
    if (own_activity(r))
        return (r->walk_val = V_YES);
    if (!r->want)
        return (r->walk_val = V_NO);
    frame *stack = mgr->walk_stack;
    size_t sp = 0;
    r->walk_val = V_OPEN;
    stack[sp++] = (frame){r, 0};
    while (sp) {
        frame *f = &stack[sp - 1];
        bgl_service *s = f->s;
        if (f->i == s->n_deps) {
            s->walk_val = V_YES;
            sp--;
            continue;
        }
        bgl_service *d = s->deps[f->i];
        if (d && d->walk_gen != gen) {
            d->walk_gen = gen;
            if (own_activity(d)) {
                d->walk_val = V_YES;
            } else if (!d->want) {
                d->walk_val = V_NO;
            } else {
                d->walk_val = V_OPEN;
                stack[sp++] = (frame){d, 0};
                continue;
            }
        }
        if (d && d->walk_val == V_YES) {
            f->i++;
        } else {
            s->walk_val = V_NO;
            sp--;
        }
    }
    return r->walk_val == V_YES;
}

/* The one "failed for good" rule (exit code, info, list). */
int bgli_svc_failed_for_good(const bgl_service *s)
{
    return s->state == BGL_SERVICE_FAILED && !bgli_svc_is_active(s);
}

int bgli_svc_in_use(const bgl_service *s)
{
    return s->want || bgli_svc_is_busy(s) || s->restart_pending || bgli_stack_busy(s->res);
}

/* ---- validation ---------------------------------------------------------- */

enum { GREY = 1, BLACK = 2 };

static void set_error(bgl_services *mgr, char *text)
{
    free(mgr->last_error);
    mgr->last_error = text;
}

/* The cycle closed by `back`: the path from back to the top, then back. */
static char *cycle_text(const frame *path, size_t depth, const bgl_service *back)
{
    size_t from = 0;
    while (path[from].s != back)
        from++;
    size_t len = strlen("dependency cycle: ") + strlen(back->name) + 1;
    for (size_t i = from; i < depth; i++)
        len += strlen(path[i].s->name) + 4;
    char *text = malloc(len);
    if (!text)
        return NULL;
    char *p = text + sprintf(text, "dependency cycle: ");
    for (size_t i = from; i < depth; i++)
        p += sprintf(p, "%s -> ", path[i].s->name);
    strcpy(p, back->name);
    return text;
}

static int visit(bgl_services *mgr, bgl_service *root, uint64_t gen)
{
    frame *stack = mgr->walk_stack;
    size_t sp = 0;
    root->walk_gen = gen;
    root->walk_val = GREY;
    stack[sp++] = (frame){root, 0};
    while (sp) {
        frame *f = &stack[sp - 1];
        bgl_service *s = f->s;
        if (f->i == s->n_deps) {
            s->walk_val = BLACK;
            sp--;
            continue;
        }
        size_t i = f->i++;
        bgl_service *d = s->deps[i];
        if (!d && bgli_svc_lookup(mgr, s->dep_names[i]))
            return -ENOMEM;   /* known, but linking it ran out of memory */
        if (!d) {
            set_error(mgr, bgli_strdupf("service '%s' depends on unknown service '%s'", s->name,
                                        s->dep_names[i]));
            return -ENOENT;
        }
        if (d->walk_gen == gen) {
            if (d->walk_val == GREY) {
                set_error(mgr, cycle_text(stack, sp, d));
                return -ELOOP;
            }
            continue;
        }
        d->walk_gen = gen;
        d->walk_val = GREY;
        stack[sp++] = (frame){d, 0};
    }
    return 0;
}

int bgli_svc_want_closure(bgl_services *mgr, bgl_service **roots, size_t n)
{
    if (!mgr->n)
        return 0;
    bgli_deps_resolve(mgr);
    uint64_t gen = ++mgr->walk_gen;
    for (size_t i = 0; i < n; i++) {
        if (roots[i]->walk_gen == gen)
            continue;
        int r = visit(mgr, roots[i], gen);
        if (r < 0)
            return r;
    }
    /* Every BLACK service is a root or a dependency of one. */
    for (size_t i = 0; i < mgr->n; i++) {
        bgl_service *s = mgr->svcs[i];
        if (s->walk_gen == gen && s->walk_val == BLACK && !s->want) {
            bgli_svc_restart_reset(s);
            bgli_svc_set_want(s, 1);
        }
    }
    return 0;
}
