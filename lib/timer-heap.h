/* timer-heap.h - 4-ary min-heap of timers keyed by (deadline, arming seq).
 *
 * The key is stored in the heap entry itself so sifting touches only the
 * heap array; each timer remembers its slot so it can be removed in
 * O(log n).  4-ary: shallower than binary and the four children share a
 * cache line or two, which is what libuv/Go-style timer heaps found fastest.
 */
#ifndef BGL_TIMER_HEAP_H
#define BGL_TIMER_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct bgl_timer;

typedef struct bgl_heap_entry {
    uint64_t deadline;
    uint64_t seq; /* ties fire in arming order */
    struct bgl_timer *timer;
} bgl_heap_entry;

typedef struct bgl_timer_heap {
    bgl_heap_entry *v;
    size_t len, cap;
} bgl_timer_heap;

#define BGL_HEAP_NONE ((size_t)-1)

BGL_INTERNAL void bgli_heap_init(bgl_timer_heap *h);
BGL_INTERNAL void bgli_heap_free(bgl_timer_heap *h);
/* 0 or -ENOMEM.  Stores the slot in the timer (see timer.c). */
BGL_INTERNAL int bgli_heap_push(bgl_timer_heap *h, bgl_heap_entry e);
/* Remove the entry at slot i. */
BGL_INTERNAL void bgli_heap_remove(bgl_timer_heap *h, size_t i);
/* The earliest entry, or NULL. */
static inline const bgl_heap_entry *bgli_heap_top(const bgl_timer_heap *h)
{
    return h->len ? &h->v[0] : NULL;
}

#endif /* BGL_TIMER_HEAP_H */
