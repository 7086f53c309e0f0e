/* bgloop/lag.h - how late the loop runs: a periodic probe.
 *
 * A lag probe arms one timer on a loop and measures, each time it fires,
 * how long after its deadline its callback actually ran: the time the loop
 * spent in other callbacks (a callback that blocks) or away from the
 * kernel wait (a host that does not drive it).  It re-arms itself one
 * period after each run, so the loop wakes up once per period while a
 * probe exists and never otherwise: create it only while someone watches
 * (a health endpoint, a dashboard) and free it afterwards.
 *
 * Everything is on the loop's clock (bgl_loop_now(), bgl_loop_set_clock())
 * and belongs to the loop's thread.  Free every probe before its loop.
 */
#ifndef BGLOOP_LAG_H
#define BGLOOP_LAG_H

#include <stdint.h>
#include "bgloop/common.h"
#include "bgloop/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_lag bgl_lag;

typedef struct bgl_lag_stats {
    uint64_t period_ns;       /* as given to bgl_lag_new() */
    uint64_t samples;         /* times the probe ran */
    uint64_t last_ns;         /* how late its last run was */
    uint64_t max_ns;          /* the latest of all its runs */
    uint64_t overdue_ns;      /* how far past its next deadline the loop's
                                 clock is now (0 if not yet due): grows
                                 while a callback blocks the loop */
    uint64_t last_tick_ns;    /* loop clock of its last run (of its
                                 creation before the first) */
    uint64_t since_tick_ns;   /* time from then to now */
} bgl_lag_stats;

/* The most a period may be: about 30 years. */
#define BGL_LAG_PERIOD_MAX_NS (UINT64_C(1) << 60)

/* Create a probe on `loop` firing every `period_ns` (> 0, at most
 * BGL_LAG_PERIOD_MAX_NS).  0 and *out; -EINVAL (NULL, period 0), -ERANGE
 * (period too long), -ENOMEM, or the error of bgl_timer_new() (-EBUSY while
 * the loop is being freed). */
BGL_EXPORT int bgl_lag_new(bgl_loop *loop, uint64_t period_ns, bgl_lag **out);

/* Fill *stats, measured against the loop's clock read now.  0 or -EINVAL. */
BGL_EXPORT int bgl_lag_get_stats(const bgl_lag *lag, bgl_lag_stats *stats);

/* Disarm and free the probe.  0 or -EINVAL. */
BGL_EXPORT int bgl_lag_free(bgl_lag *lag);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_LAG_H */
