/* queue.h - the dispatch queue: an intrusive, doubly linked FIFO.
 *
 * Every source that can be dispatched embeds a bgl_node.  Doubly linked so
 * that freeing a queued source unlinks it in O(1); circular with a sentinel
 * so that push/pop/unlink have no special cases.
 */
#ifndef BGL_QUEUE_H
#define BGL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

enum bgl_node_kind {
    BGL_NODE_SENTINEL = 0, /* list head, or the end-of-dispatch marker */
    BGL_NODE_CALL,         /* bgl_loop_call_soon() */
    BGL_NODE_TSCALL,       /* bgl_loop_call_threadsafe() */
    BGL_NODE_IO,
    BGL_NODE_TIMER,
    BGL_NODE_SIGNAL,
};

typedef struct bgl_node {
    struct bgl_node *prev, *next;
    uint8_t kind;
    uint8_t queued; /* 1 while linked into a loop's dispatch queue */
} bgl_node;

static inline void bgli_queue_init(bgl_node *head)
{
    head->prev = head->next = head;
    head->kind = BGL_NODE_SENTINEL;
    head->queued = 0;
}

static inline int bgli_queue_empty(const bgl_node *head)
{
    return head->next == head;
}

static inline void bgli_queue_push(bgl_node *head, bgl_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
    n->queued = 1;
}

static inline void bgli_queue_unlink(bgl_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->queued = 0;
}

/* First node, or NULL when empty. */
static inline bgl_node *bgli_queue_first(bgl_node *head)
{
    return head->next == head ? NULL : head->next;
}

#endif /* BGL_QUEUE_H */
