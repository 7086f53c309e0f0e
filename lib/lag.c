/* lag.c - the lag probe (bgloop/lag.h): a self-re-arming one-shot timer
 * that records how late each of its runs was. */
#include <errno.h>
#include <stdlib.h>

#include "bgloop/lag.h"
#include "loop-internal.h"

struct bgl_lag {
    bgl_loop *loop;
    bgl_timer *timer;
    uint64_t period_ns;
    uint64_t deadline_ns;     /* of the armed run */
    uint64_t samples, last_ns, max_ns, last_tick_ns;
};

static void arm(bgl_lag *lag, uint64_t from)
{
    lag->deadline_ns = from > UINT64_MAX - lag->period_ns ? UINT64_MAX : from + lag->period_ns;
    bgl_timer_start_at(lag->timer, lag->deadline_ns, 0);
}

static void on_probe(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_lag *lag = userdata;
    /* The clock now, not the iteration's cached time: callbacks that ran
     * before this one in the same iteration made it late too. */
    uint64_t now = bgli_loop_clock(lag->loop);
    uint64_t late = now > lag->deadline_ns ? now - lag->deadline_ns : 0;
    lag->samples++;
    lag->last_ns = late;
    if (late > lag->max_ns)
        lag->max_ns = late;
    lag->last_tick_ns = now;
    /* One period after this run, not after the missed deadline: a stalled
     * loop is measured once, not replayed. */
    arm(lag, now);
}

int bgl_lag_new(bgl_loop *loop, uint64_t period_ns, bgl_lag **out)
{
    if (!loop || !out || period_ns == 0)
        return -EINVAL;
    if (period_ns > BGL_LAG_PERIOD_MAX_NS)
        return -ERANGE;
    bgl_lag *lag = calloc(1, sizeof *lag);
    if (!lag)
        return -ENOMEM;
    lag->loop = loop;
    lag->period_ns = period_ns;
    int r = bgl_timer_new(loop, on_probe, lag, &lag->timer);
    if (r < 0) {
        free(lag);
        return r;
    }
    lag->last_tick_ns = bgli_loop_clock(loop);
    arm(lag, lag->last_tick_ns);
    *out = lag;
    return 0;
}

int bgl_lag_get_stats(const bgl_lag *lag, bgl_lag_stats *stats)
{
    if (!lag || !stats)
        return -EINVAL;
    uint64_t now = bgli_loop_clock(lag->loop);
    stats->period_ns = lag->period_ns;
    stats->samples = lag->samples;
    stats->last_ns = lag->last_ns;
    stats->max_ns = lag->max_ns;
    stats->overdue_ns = now > lag->deadline_ns ? now - lag->deadline_ns : 0;
    stats->last_tick_ns = lag->last_tick_ns;
    stats->since_tick_ns = now > lag->last_tick_ns ? now - lag->last_tick_ns : 0;
    return 0;
}

int bgl_lag_free(bgl_lag *lag)
{
    if (!lag)
        return -EINVAL;
    bgl_timer_free(lag->timer);
    free(lag);
    return 0;
}
