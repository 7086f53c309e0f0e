/* service-restart.c - restart policy, exponential backoff and start limit. */
#include <errno.h>
#include <stdlib.h>

#include "service-internal.h"

int bgli_svc_restart_init(bgl_service *s)
{
    if (s->cfg.start_limit_burst) {
        s->starts = calloc(s->cfg.start_limit_burst, sizeof *s->starts);
        if (!s->starts)
            return -ENOMEM;
    }
    return 0;
}

void bgli_svc_restart_reset(bgl_service *s)
{
    s->consecutive = 0;
    s->n_starts = 0;
    s->starts_pos = 0;
}

/* Hit when `burst` starts are recorded and the oldest of them is still
 * within the interval. */
int bgli_svc_start_limit_hit(const bgl_service *s, uint64_t now)
{
    unsigned burst = s->cfg.start_limit_burst;
    if (!burst || s->n_starts < burst)
        return 0;
    uint64_t oldest = s->starts[s->starts_pos];
    return now - oldest < s->cfg.start_limit_interval_ns;
}

void bgli_svc_record_start(bgl_service *s, uint64_t now)
{
    unsigned burst = s->cfg.start_limit_burst;
    if (!burst)
        return;
    s->starts[s->starts_pos] = now;
    s->starts_pos = (s->starts_pos + 1) % burst;
    if (s->n_starts < burst)
        s->n_starts++;
}

static uint64_t backoff(const bgl_service *s)
{
    uint64_t d = s->cfg.restart_delay_ns, max = s->cfg.restart_delay_max_ns;
    for (unsigned i = 0; i < s->consecutive && d < max; i++)
        d = d > max / 2 ? max : d * 2;
    return d < max ? d : max;
}

void bgli_svc_after_end(bgl_service *s)
{
    if (!s->want)
        return;
    bgl_restart_policy p = s->cfg.restart;
    int restart = p == BGL_RESTART_ALWAYS ||
                  (p == BGL_RESTART_ON_FAILURE && s->state == BGL_SERVICE_FAILED);
    if (!restart) {
        bgli_svc_set_want(s, 0);
        return;
    }
    if (s->stable)
        s->consecutive = 0;
    uint64_t delay = backoff(s);
    if (bgl_timer_start(s->restart_timer, delay, 0) < 0) {
        /* Cannot happen with a valid timer; do not leave it wanted forever. */
        bgli_svc_set_want(s, 0);
        return;
    }
    s->restart_pending = 1;
    /* The timer's own deadline: now + delay saturates there instead of
     * wrapping for a delay near UINT64_MAX. */
    bgl_timer_get_deadline(s->restart_timer, &s->restart_at_ns);
}

void bgli_svc_restart_fired(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bgl_service *s = userdata;
    s->restart_pending = 0;
    s->restarts++;
    s->consecutive++;
    bgli_svc_schedule(s->mgr);
}
