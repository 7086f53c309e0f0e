/* call.c - deferred calls ("call soon") and the call-node freelist. */
#include <errno.h>
#include <stdlib.h>

#include "loop-internal.h"

/* Out of line and cold, so that the freelist path needs no stack frame. */
__attribute__((noinline, cold)) static bgl_call *call_alloc_slow(void)
{
    return malloc(sizeof(bgl_call));
}

static inline bgl_call *call_alloc(bgl_loop *loop)
{
    bgl_call *c = loop->call_free;
    if (c) {
        loop->call_free = c->next_free;
        loop->call_free_n--;
        return c;
    }
    return call_alloc_slow();
}

void bgli_call_recycle_slow(bgl_loop *loop, bgl_call *c)
{
    if (c->node.kind == BGL_NODE_TSCALL) {
        /* Handed back to the other threads in one batch at the next
         * collect, so recycling costs no lock here. */
        c->next_free = loop->ts_recycle;
        loop->ts_recycle = c;
        loop->ts_recycle_n++;
        return;
    }
    if (loop->call_free_n >= BGL_CALL_FREE_MAX) {
        free(c);
        return;
    }
    c->next_free = loop->call_free;
    loop->call_free = c;
    loop->call_free_n++;
}

void bgli_calls_free_all(bgl_loop *loop)
{
    bgl_call *c;
    while ((c = loop->call_free)) {
        loop->call_free = c->next_free;
        free(c);
    }
    loop->call_free_n = 0;
}

int bgl_loop_call_soon_full(bgl_loop *loop, bgl_callback cb, void *userdata,
                            bgl_callback discard)
{
    if (!loop || !cb)
        return -EINVAL;
    if (loop->freeing)
        return -EBUSY;
    bgl_call *c = call_alloc(loop);
    if (!c)
        return -ENOMEM;
    c->node.kind = BGL_NODE_CALL;
    c->cb = cb;
    c->discard = discard;
    c->userdata = userdata;
    bgli_loop_enqueue(loop, &c->node);
    return 0;
}

int bgl_loop_call_soon(bgl_loop *loop, bgl_callback cb, void *userdata)
{
    return bgl_loop_call_soon_full(loop, cb, userdata, NULL);
}
