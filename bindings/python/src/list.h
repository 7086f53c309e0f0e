/* list.h - the extension's one intrusive list: circular, doubly linked, with
 * a sentinel head, so linking and unlinking are O(1) without special cases.
 * An object embeds a bglpy_link per list it can be on; bglpy_entry() gets
 * the object back from the link.  All of it runs with the GIL held.
 */
#ifndef BGLPY_LIST_H
#define BGLPY_LIST_H

#include <stddef.h>

typedef struct bglpy_link {
    struct bglpy_link *prev, *next; /* NULL, NULL when not on a list */
} bglpy_link;

#define bglpy_entry(link, type, member) ((type *)((char *)(link) - offsetof(type, member)))

/* `pos` walks the links; the loop body must not unlink `pos` itself (take
 * the first entry repeatedly instead, see bglpy_list_first()). */
#define bglpy_list_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

static inline void bglpy_list_init(bglpy_link *head)
{
    head->prev = head->next = head;
}

static inline int bglpy_list_empty(const bglpy_link *head)
{
    return head->next == head;
}

static inline int bglpy_linked(const bglpy_link *n)
{
    return n->next != NULL;
}

/* Append n (not on any list) at the tail. */
static inline void bglpy_list_push(bglpy_link *head, bglpy_link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlink n if it is on a list. */
static inline void bglpy_list_unlink(bglpy_link *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The first link, or NULL when the list is empty. */
static inline bglpy_link *bglpy_list_first(bglpy_link *head)
{
    return head->next == head ? NULL : head->next;
}

#endif /* BGLPY_LIST_H */
