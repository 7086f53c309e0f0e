/* Health: the lag probe (bgloop/lag.h) measures how late its timer runs on
 * a fake clock - a stalled loop shows as overdue, then as the lateness of
 * the next run - and leaves no timer once freed; bgl_services_ready() is
 * true exactly while at least one service is wanted and every wanted one
 * is running. */
#include <criterion/criterion.h>
#include <errno.h>

#include "bgloop/lag.h"
#include "lifecycle-harness.h"

TestSuite(health, .timeout = BGL_TEST_TIMEOUT);

#define LAG_MS UINT64_C(1000000) /* unsigned, as the probe's figures are */

static bgl_lag_stats lag_stats(const bgl_lag *lag)
{
    bgl_lag_stats s;
    OK(bgl_lag_get_stats(lag, &s));
    return s;
}

Test(health, lag_of_a_stalled_loop)
{
    world w;
    world_init(&w);
    bgl_lag *lag;
    OK(bgl_lag_new(w.loop, 100 * LAG_MS, &lag));
    advance(&w, 100 * LAG_MS);
    bgl_lag_stats s = lag_stats(lag);
    cr_assert_eq(s.samples, 1);
    cr_assert_eq(s.last_ns, 0);
    cr_assert_eq(s.since_tick_ns, 0);

    /* A callback blocks the loop for 350 ms: the next run is overdue. */
    w.clk.now += 350 * LAG_MS;
    s = lag_stats(lag);
    cr_assert_eq(s.samples, 1);
    cr_assert_eq(s.overdue_ns, 250 * LAG_MS);
    cr_assert_eq(s.since_tick_ns, 350 * LAG_MS);

    settle(&w);
    s = lag_stats(lag);
    cr_assert_eq(s.samples, 2);
    cr_assert_eq(s.last_ns, 250 * LAG_MS);
    cr_assert_eq(s.max_ns, 250 * LAG_MS);
    cr_assert_eq(s.overdue_ns, 0);
    cr_assert_eq(s.period_ns, 100 * LAG_MS);

    /* One period after that late run, not a replay of the missed ones. */
    advance(&w, 100 * LAG_MS);
    s = lag_stats(lag);
    cr_assert_eq(s.samples, 3);
    cr_assert_eq(s.last_ns, 0);
    cr_assert_eq(s.max_ns, 250 * LAG_MS);
    OK(bgl_lag_free(lag));
    world_free(&w);
}

Test(health, a_freed_probe_leaves_no_timer)
{
    bgl_loop *loop = new_loop();
    bgl_loop_stats before, armed, after;
    OK(bgl_loop_get_stats(loop, &before));
    bgl_lag *lag;
    OK(bgl_lag_new(loop, 10 * LAG_MS, &lag));
    OK(bgl_loop_get_stats(loop, &armed));
    cr_assert_eq(armed.timers_armed, before.timers_armed + 1);
    OK(bgl_lag_free(lag));
    OK(bgl_loop_get_stats(loop, &after));
    cr_assert_eq(after.timers_armed, before.timers_armed);
    free_loop(loop);
}

Test(health, lag_bad_input)
{
    bgl_loop *loop = new_loop();
    bgl_lag *lag = NULL;
    bgl_lag_stats s;
    EXPECT_RC(bgl_lag_new(NULL, LAG_MS, &lag), -EINVAL);
    EXPECT_RC(bgl_lag_new(loop, 0, &lag), -EINVAL);
    EXPECT_RC(bgl_lag_new(loop, LAG_MS, NULL), -EINVAL);
    EXPECT_RC(bgl_lag_new(loop, BGL_LAG_PERIOD_MAX_NS + 1, &lag), -ERANGE);
    cr_assert_null(lag);
    EXPECT_RC(bgl_lag_get_stats(NULL, &s), -EINVAL);
    EXPECT_RC(bgl_lag_free(NULL), -EINVAL);
    OK(bgl_lag_new(loop, BGL_LAG_PERIOD_MAX_NS, &lag));
    EXPECT_RC(bgl_lag_get_stats(lag, NULL), -EINVAL);
    OK(bgl_lag_free(lag));
    free_loop(loop);
}

Test(health, ready_while_every_wanted_service_runs)
{
    world w;
    world_init(&w);
    EXPECT_RC(bgl_services_ready(NULL), -EINVAL);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);      /* nothing wanted */
    fake_svc *db = add(&w, "db", NULL);
    fake_svc *web = add(&w, "web", DEPS("db"));
    fake_svc *extra = add(&w, "extra", NULL);
    OK(bgl_service_start(web->svc));
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);      /* db starting */
    ready(db);
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);      /* web starting */
    ready(web);
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 1);      /* extra is not wanted */
    OK(bgl_service_start(extra->svc));
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);
    ready(extra);
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 1);
    OK(bgl_service_stop(db->svc));                /* web goes down with it */
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_RC(bgl_services_ready(w.mgr), 0);      /* nothing wanted any more */
    world_free(&w);
}
