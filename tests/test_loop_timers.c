/* test_loop_timers.c - timer order, ties, repetition and cancellation, on a
 * fake clock (bgl_loop_set_clock) so that nothing depends on real time. */
#include "helpers.h"

TestSuite(timers, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000)

static void never_fires(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    cr_assert_fail("a timer fired that should not have");
}

Test(timers, fire_in_deadline_order)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    recorder r = {0};
    const uint64_t after[] = {300, 100, 500, 200, 400};
    rec_item it[5];
    bgl_timer *t[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, (int)after[i]};
        OK(bgl_timer_new(loop, rec_timer_cb, &it[i], &t[i]));
        OK(bgl_timer_start(t[i], after[i], 0));
    }
    clk.now = T0 + 1000;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 5);
    EXPECT_SEQ(&r, 100, 200, 300, 400, 500);
    for (int i = 0; i < 5; i++)
        OK(bgl_timer_free(t[i]));
    free_loop(loop);
}

Test(timers, equal_deadlines_fire_in_arming_order)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    recorder r = {0};
    const int arm_order[] = {3, 1, 4, 0, 2};
    rec_item it[5];
    bgl_timer *t[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, i};
        OK(bgl_timer_new(loop, rec_timer_cb, &it[i], &t[i]));
    }
    for (int i = 0; i < 5; i++)
        OK(bgl_timer_start(t[arm_order[i]], 50, 0));
    clk.now = T0 + 50;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 5);
    EXPECT_SEQ(&r, 3, 1, 4, 0, 2);
    for (int i = 0; i < 5; i++)
        OK(bgl_timer_free(t[i]));
    free_loop(loop);
}

Test(timers, rearming_moves_a_timer_behind_equal_deadlines)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    recorder r = {0};
    rec_item a_it = {&r, 1}, b_it = {&r, 2};
    bgl_timer *a, *b;
    OK(bgl_timer_new(loop, rec_timer_cb, &a_it, &a));
    OK(bgl_timer_new(loop, rec_timer_cb, &b_it, &b));
    OK(bgl_timer_start_at(a, T0 + 10, 0));
    OK(bgl_timer_start_at(b, T0 + 10, 0));
    OK(bgl_timer_start_at(a, T0 + 10, 0)); /* armed again: now the later one */
    clk.now = T0 + 10;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    EXPECT_SEQ(&r, 2, 1);
    OK(bgl_timer_free(a));
    OK(bgl_timer_free(b));
    free_loop(loop);
}

Test(timers, fires_at_its_deadline_not_before)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    recorder r = {0};
    rec_item it = {&r, 1};
    bgl_timer *t;
    OK(bgl_timer_new(loop, rec_timer_cb, &it, &t));
    OK(bgl_timer_start(t, 100, 0));
    clk.now = T0 + 99;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    clk.now = T0 + 100;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_timer_is_active(t), 0); /* one-shot: disarmed once fired */
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(timers, start_is_relative_to_the_cached_time)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    clk.now = T0 + 5000; /* the clock moved, the cached time did not */
    bgl_timer *t;
    OK(bgl_timer_new(loop, never_fires, NULL, &t));
    OK(bgl_timer_start(t, 100, 0));
    uint64_t deadline = 0;
    OK(bgl_timer_get_deadline(t, &deadline));
    cr_assert_eq(deadline, T0 + 100);
    OK(bgl_timer_start_at(t, T0 + 777, 0));
    OK(bgl_timer_get_deadline(t, &deadline));
    cr_assert_eq(deadline, T0 + 777);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(timers, repeating_timer_keeps_its_period_without_drift)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 100, 100));
    uint64_t deadline = 0;

    clk.now = T0 + 100;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_timer_get_deadline(t, &deadline));
    cr_assert_eq(deadline, T0 + 200);

    clk.now = T0 + 250; /* 50 late: the next deadline still is 300, not 350 */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_timer_get_deadline(t, &deadline));
    cr_assert_eq(deadline, T0 + 300);

    EXPECT_RC(bgl_loop_run_once(loop, 0), 0); /* not due yet */
    clk.now = T0 + 300;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(counted, 3);
    EXPECT_RC(bgl_timer_is_active(t), 1);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(timers, repeating_timer_that_fell_behind_fires_once_and_skips_missed_periods)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 100, 100));
    clk.now = T0 + 550; /* deadlines 100..500 all passed */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(counted, 1);
    uint64_t deadline = 0;
    OK(bgl_timer_get_deadline(t, &deadline));
    cr_assert_eq(deadline, T0 + 600);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

/* Two timers due in the same iteration; the first one dispatched cancels
 * the other, which is already queued and must not fire. */
static struct {
    bgl_timer *t[2];
    int fired[2];
    int use_free;
} pair;

static void cancel_other(bgl_timer *t, void *ud)
{
    int me = (int)(intptr_t)ud;
    cr_assert_eq(t, pair.t[me]);
    pair.fired[me]++;
    bgl_timer *other = pair.t[1 - me];
    if (other == NULL)
        return;
    EXPECT_RC(bgl_timer_is_active(other), 1); /* expired and queued */
    if (pair.use_free) {
        OK(bgl_timer_free(other));
        pair.t[1 - me] = NULL;
    } else {
        OK(bgl_timer_stop(other));
        EXPECT_RC(bgl_timer_is_active(other), 0);
    }
}

static void cancel_inside_callback(int use_free)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    pair.use_free = use_free;
    for (int i = 0; i < 2; i++) {
        OK(bgl_timer_new(loop, cancel_other, (void *)(intptr_t)i, &pair.t[i]));
        OK(bgl_timer_start(pair.t[i], 10, 0));
    }
    clk.now = T0 + 10;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(pair.fired[0], 1, "the first armed timer did not fire first");
    cr_assert_eq(pair.fired[1], 0, "a cancelled timer fired");
    clk.now = T0 + 1000;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    for (int i = 0; i < 2; i++)
        if (pair.t[i])
            OK(bgl_timer_free(pair.t[i]));
    free_loop(loop);
}

Test(timers, stop_inside_a_callback_cancels_an_expired_timer)
{
    cancel_inside_callback(0);
}

Test(timers, free_inside_a_callback_cancels_an_expired_timer)
{
    cancel_inside_callback(1);
}

static void stop_self_after_two(bgl_timer *t, void *ud)
{
    (void)ud;
    if (++counted == 2)
        OK(bgl_timer_stop(t));
}

Test(timers, repeating_timer_stops_itself_from_its_callback)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, stop_self_after_two, NULL, &t));
    OK(bgl_timer_start(t, 10, 10));
    for (int i = 1; i <= 5; i++) {
        clk.now = T0 + 10 * (uint64_t)i;
        bgl_loop_run_once(loop, 0);
    }
    cr_assert_eq(counted, 2);
    EXPECT_RC(bgl_timer_is_active(t), 0);
    EXPECT_RC(bgl_timer_get_deadline(t, &(uint64_t){0}), -ENOENT);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

static void rearm_zero(bgl_timer *t, void *ud)
{
    (void)ud;
    if (++counted < 3)
        OK(bgl_timer_start(t, 0, 0)); /* due at once, yet next iteration */
}

Test(timers, timer_rearmed_due_in_its_callback_fires_next_iteration)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, rearm_zero, NULL, &t));
    OK(bgl_timer_start(t, 0, 0));
    for (int i = 1; i <= 3; i++) {
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
        cr_assert_eq(counted, i);
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(timers, is_active_and_deadline_follow_the_timer_state)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    uint64_t deadline = 0;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    EXPECT_RC(bgl_timer_is_active(t), 0);
    EXPECT_RC(bgl_timer_get_deadline(t, &deadline), -ENOENT);
    OK(bgl_timer_start(t, 10, 0));
    EXPECT_RC(bgl_timer_is_active(t), 1);
    OK(bgl_timer_stop(t));
    OK(bgl_timer_stop(t)); /* idempotent */
    EXPECT_RC(bgl_timer_is_active(t), 0);
    clk.now = T0 + 100;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0); /* a stopped timer never fires */
    OK(bgl_timer_start(t, 10, 0));
    clk.now = T0 + 200;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_timer_is_active(t), 0);
    EXPECT_RC(bgl_timer_get_deadline(t, &deadline), -ENOENT);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

/* A soon callback runs before the timers collected in the same iteration,
 * so it sees the expired timer still queued. */
static bgl_timer *queued_timer;
static void check_queued(void *ud)
{
    (void)ud;
    EXPECT_RC(bgl_timer_is_active(queued_timer), 1);
    OK(bgl_timer_stop(queued_timer));
}

Test(timers, stop_before_dispatch_drops_an_expired_queued_timer)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    OK(bgl_timer_new(loop, never_fires, NULL, &queued_timer));
    OK(bgl_timer_start(queued_timer, 10, 0));
    OK(bgl_loop_call_soon(loop, check_queued, NULL));
    clk.now = T0 + 10;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_timer_free(queued_timer));
    free_loop(loop);
}

/* A thousand timers in pseudo-random order, every third one cancelled:
 * exercises the heap's sift up/down and removal from the middle. */
#define MANY 1000
static struct {
    uint64_t last_deadline;
    int last_index;
    int fired;
} sorted;
static bgl_timer *many[MANY];
static uint64_t many_deadline[MANY];

static void check_sorted(bgl_timer *t, void *ud)
{
    int i = (int)(intptr_t)ud;
    cr_assert_eq(t, many[i]);
    cr_assert_neq(i % 3, 0, "cancelled timer %d fired", i);
    cr_assert_geq(many_deadline[i], sorted.last_deadline, "timer %d fired out of order", i);
    if (many_deadline[i] == sorted.last_deadline)
        cr_assert_gt(i, sorted.last_index, "tie broken against arming order");
    sorted.last_deadline = many_deadline[i];
    sorted.last_index = i;
    sorted.fired++;
}

Test(timers, thousand_timers_fire_sorted_and_cancelled_ones_never)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    uint32_t seed = 12345;
    int expected = 0;
    for (int i = 0; i < MANY; i++) {
        seed = seed * 1103515245u + 12345u;
        many_deadline[i] = T0 + 1 + (seed >> 16) % 200; /* many ties */
        OK(bgl_timer_new(loop, check_sorted, (void *)(intptr_t)i, &many[i]));
        OK(bgl_timer_start_at(many[i], many_deadline[i], 0));
    }
    for (int i = 0; i < MANY; i += 3)
        OK(bgl_timer_stop(many[i]));
    for (int i = 0; i < MANY; i++)
        expected += i % 3 != 0;
    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.timers_armed, (uint64_t)expected);
    /* Advance in steps so that the heap is popped across many iterations. */
    for (uint64_t step = 0; step <= 200; step += 7) {
        clk.now = T0 + step;
        bgl_loop_run_once(loop, 0);
    }
    clk.now = T0 + 1000;
    bgl_loop_run_once(loop, 0);
    cr_assert_eq(sorted.fired, expected);
    for (int i = 0; i < MANY; i++)
        OK(bgl_timer_free(many[i]));
    free_loop(loop);
}

Test(timers, set_clock_is_refused_while_timers_are_armed)
{
    bgl_loop *loop = new_loop();
    fake_clock clk = {T0};
    bgl_timer *t;
    OK(bgl_timer_new(loop, never_fires, NULL, &t));
    OK(bgl_timer_start(t, 3600 * SEC, 0));
    EXPECT_RC(bgl_loop_set_clock(loop, fake_clock_read, &clk), -EBUSY);
    OK(bgl_timer_stop(t));
    OK(bgl_loop_set_clock(loop, fake_clock_read, &clk));
    OK(bgl_loop_update_time(loop));
    cr_assert_eq(loop_now(loop), T0);
    /* NULL restores CLOCK_MONOTONIC. */
    OK(bgl_loop_set_clock(loop, NULL, NULL));
    uint64_t before = bgl_monotonic_ns();
    OK(bgl_loop_update_time(loop));
    uint64_t now = loop_now(loop);
    cr_assert(now >= before && now <= bgl_monotonic_ns(), "now %llu is not the monotonic clock",
              (unsigned long long)now);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(timers, custom_clock_drives_the_cached_time)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    cr_assert_eq(loop_now(loop), T0);
    clk.now = T0 + 42;
    cr_assert_eq(loop_now(loop), T0, "the cached time moved without an iteration");
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(loop_now(loop), T0 + 42);
    free_loop(loop);
}

Test(timers, real_clock_timer_fires_under_run)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 5 * MS, 0));
    OK(bgl_loop_run(loop)); /* runs until the one-shot timer is gone */
    cr_assert_eq(counted, 1);
    OK(bgl_timer_free(t));
    free_loop(loop);
}
