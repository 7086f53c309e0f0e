/* timer-heap.c - 4-ary min-heap; keeps each timer's heap_idx current. */
#include <errno.h>
#include <stdlib.h>

#include "loop-internal.h"

#define ARITY 4

static inline int less(const bgl_heap_entry *a, const bgl_heap_entry *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(bgl_timer_heap *h, size_t i, bgl_heap_entry e)
{
    h->v[i] = e;
    e.timer->heap_idx = i;
}

static void sift_up(bgl_timer_heap *h, size_t i, bgl_heap_entry e)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!less(&e, &h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(bgl_timer_heap *h, size_t i, bgl_heap_entry e)
{
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= h->len)
            break;
        size_t last = first + ARITY < h->len ? first + ARITY : h->len;
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (less(&h->v[c], &h->v[best]))
                best = c;
        if (!less(&h->v[best], &e))
            break;
        place(h, i, h->v[best]);
        i = best;
    }
    place(h, i, e);
}

void bgli_heap_init(bgl_timer_heap *h)
{
    h->v = NULL;
    h->len = h->cap = 0;
}

void bgli_heap_free(bgl_timer_heap *h)
{
    free(h->v);
    bgli_heap_init(h);
}

int bgli_heap_push(bgl_timer_heap *h, bgl_heap_entry e)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        bgl_heap_entry *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    sift_up(h, h->len++, e);
    return 0;
}

void bgli_heap_remove(bgl_timer_heap *h, size_t i)
{
    h->v[i].timer->heap_idx = BGL_HEAP_NONE;
    bgl_heap_entry last = h->v[--h->len];
    if (i == h->len)
        return;
    /* The moved entry may belong above or below slot i. */
    if (i > 0 && less(&last, &h->v[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}
