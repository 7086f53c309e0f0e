/* timer.c - timers: arming, expiry into the dispatch queue, free. */
#include <errno.h>
#include <stdlib.h>

#include "loop-internal.h"

int bgl_timer_new(bgl_loop *loop, bgl_timer_cb cb, void *userdata, bgl_timer **out)
{
    if (!loop || !cb || !out)
        return -EINVAL;
    if (loop->freeing)
        return -EBUSY;
    bgl_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->node.kind = BGL_NODE_TIMER;
    t->loop = loop;
    t->heap_idx = BGL_HEAP_NONE;
    t->cb = cb;
    t->userdata = userdata;
    loop->timer_count++;
    *out = t;
    return 0;
}

static void disarm(bgl_timer *t)
{
    bgl_loop *loop = t->loop;
    if (t->heap_idx != BGL_HEAP_NONE)
        bgli_heap_remove(&loop->heap, t->heap_idx);
    if (t->node.queued)
        bgli_loop_dequeue(loop, &t->node);
}

static int arm(bgl_timer *t, uint64_t deadline, uint64_t repeat)
{
    bgl_loop *loop = t->loop;
    if (t->heap_idx != BGL_HEAP_NONE)
        bgli_heap_remove(&loop->heap, t->heap_idx);
    /* Re-arming replaces a pending expiry: it fires at the new deadline. */
    if (t->node.queued)
        bgli_loop_dequeue(loop, &t->node);
    t->deadline = deadline;
    t->repeat = repeat;
    bgl_heap_entry e = {deadline, loop->timer_seq++, t};
    return bgli_heap_push(&loop->heap, e);
}

int bgl_timer_start(bgl_timer *timer, uint64_t after_ns, uint64_t repeat_ns)
{
    if (!timer)
        return -EINVAL;
    uint64_t now = timer->loop->now;
    uint64_t deadline = after_ns > UINT64_MAX - now ? UINT64_MAX : now + after_ns;
    return arm(timer, deadline, repeat_ns);
}

int bgl_timer_start_at(bgl_timer *timer, uint64_t deadline_ns, uint64_t repeat_ns)
{
    if (!timer)
        return -EINVAL;
    return arm(timer, deadline_ns, repeat_ns);
}

int bgl_timer_stop(bgl_timer *timer)
{
    if (!timer)
        return -EINVAL;
    disarm(timer);
    return 0;
}

int bgl_timer_is_active(const bgl_timer *timer)
{
    if (!timer)
        return -EINVAL;
    return timer->heap_idx != BGL_HEAP_NONE || timer->node.queued;
}

int bgl_timer_get_deadline(const bgl_timer *timer, uint64_t *deadline_ns)
{
    if (!timer || !deadline_ns)
        return -EINVAL;
    if (timer->heap_idx == BGL_HEAP_NONE && !timer->node.queued)
        return -ENOENT;
    *deadline_ns = timer->deadline;
    return 0;
}

int bgl_timer_free(bgl_timer *timer)
{
    if (!timer)
        return -EINVAL;
    disarm(timer);
    timer->loop->timer_count--;
    free(timer);
    return 0;
}

/* Move every expired timer to the dispatch queue, earliest first.  A
 * repeating timer goes straight back into the heap at its next deadline
 * after now (missed periods are skipped, not replayed); one still queued
 * from a budget-cut iteration is not queued twice. */
void bgli_timers_collect(bgl_loop *loop)
{
    uint64_t now = loop->now;
    const bgl_heap_entry *top;
    while ((top = bgli_heap_top(&loop->heap)) && top->deadline <= now) {
        bgl_timer *t = top->timer;
        bgli_heap_remove(&loop->heap, 0);
        if (t->repeat) {
            uint64_t next;
            if (t->repeat > UINT64_MAX - now)
                next = UINT64_MAX; /* would overflow: park at the end of time */
            else
                next = t->deadline + ((now - t->deadline) / t->repeat + 1) * t->repeat;
            t->deadline = next;
            bgl_heap_entry e = {next, loop->timer_seq++, t};
            /* Cannot fail: the slot just freed is reused. */
            (void)bgli_heap_push(&loop->heap, e);
        }
        if (!t->node.queued)
            bgli_loop_enqueue(loop, &t->node);
    }
}
