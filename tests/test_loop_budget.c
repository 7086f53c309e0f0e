/* test_loop_budget.c - the dispatch budget (leftovers kept, in order, and
 * nothing lost) and bgl_loop_kick().  The budget is measured with the loop's
 * clock, so a fake clock that each callback advances makes the cuts exact. */
#include "helpers.h"

#include <pthread.h>

TestSuite(budget, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000)
#define STEP 10 /* fake ns each "costly" callback spends */

static fake_clock clk;

/* Records its id and spends STEP on the fake clock. */
static void costly(void *ud)
{
    rec_cb(ud);
    clk.now += STEP;
}

static void costly_timer(bgl_timer *t, void *ud)
{
    (void)t;
    costly(ud);
}

static struct {
    recorder *rec;
    int id;
    int calls;
} io_state;

static void costly_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)ud;
    cr_assert(revents & BGL_IO_READ);
    io_state.calls++;
    drain(fd);
    rec_push(io_state.rec, io_state.id);
    clk.now += STEP;
}

Test(budget, leftovers_stay_queued_in_order_for_the_next_iterations)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, STEP + STEP / 2)); /* two callbacks spend it */
    recorder r = {0};
    rec_item it[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    EXPECT_SEQ(&r, 1, 2);
    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.queued, 3);
    cr_assert_eq(st.budget_exhausted, 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    EXPECT_SEQ(&r, 1, 2, 3, 4);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_SEQ(&r, 1, 2, 3, 4, 5);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.budget_exhausted, 2);
    free_loop(loop);
}

Test(budget, at_least_one_callback_runs_per_iteration)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, 1)); /* every callback overspends */
    recorder r = {0};
    rec_item it[3] = {{&r, 1}, {&r, 2}, {&r, 3}};
    for (int i = 0; i < 3; i++)
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    for (int i = 1; i <= 3; i++) {
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
        cr_assert_eq(r.n, i);
    }
    EXPECT_SEQ(&r, 1, 2, 3);
    free_loop(loop);
}

Test(budget, expired_timers_and_ready_io_are_not_lost_nor_queued_twice)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, 1));
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2}, tm = {&r, 4};
    io_state.rec = &r;
    io_state.id = 3;
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, costly_io, NULL, &io));
    OK(bgl_timer_new(loop, costly_timer, &tm, &t));
    OK(bgl_timer_start(t, 0, 0));
    write_byte(p[1]);
    OK(bgl_loop_call_soon(loop, costly, &a));
    OK(bgl_loop_call_soon(loop, costly, &b));
    /* Iteration 1 queues [a, b, io, timer] and runs a; the io watcher stays
     * ready, yet later iterations must not queue it a second time. */
    for (int i = 0; i < 4; i++)
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_SEQ(&r, 1, 2, 3, 4);
    cr_assert_eq(io_state.calls, 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_io_free(io));
    OK(bgl_timer_free(t));
    close_pair(p);
    free_loop(loop);
}

/* A queued watcher whose interest is removed before its turn is skipped. */
static bgl_io *victim;
static void pause_victim(void *ud)
{
    costly(ud);
    OK(bgl_io_set_events(victim, 0));
}

Test(budget, queued_io_is_filtered_by_its_interest_at_dispatch_time)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, 1));
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2};
    io_state.rec = &r;
    io_state.id = 3;
    bgl_fd p[2];
    make_pipe(p);
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, costly_io, NULL, &victim));
    write_byte(p[1]);
    OK(bgl_loop_call_soon(loop, costly, &a));
    OK(bgl_loop_call_soon(loop, pause_victim, &b));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1); /* a; queue [b, io] */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1); /* b pauses io */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    EXPECT_SEQ(&r, 1, 2);
    cr_assert_eq(io_state.calls, 0);
    OK(bgl_io_free(victim));
    close_pair(p);
    free_loop(loop);
}

Test(budget, iteration_with_leftovers_does_not_block)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, 1));
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2};
    OK(bgl_loop_call_soon(loop, costly, &a));
    OK(bgl_loop_call_soon(loop, costly, &b));
    EXPECT_RC(bgl_loop_run_once(loop, -1), 1);
    EXPECT_RC(bgl_loop_run_once(loop, -1), 1); /* would hang if it blocked */
    EXPECT_SEQ(&r, 1, 2);
    free_loop(loop);
}

Test(budget, negative_budget_is_unlimited)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    OK(bgl_loop_set_budget(loop, 1));
    OK(bgl_loop_set_budget(loop, -1));
    recorder r = {0};
    rec_item it[4] = {{&r, 1}, {&r, 2}, {&r, 3}, {&r, 4}};
    for (int i = 0; i < 4; i++)
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 4);
    EXPECT_RC(bgl_loop_set_budget(loop, 0), -EINVAL);
    free_loop(loop);
}

Test(budget, real_clock_budget_cuts_a_slow_iteration)
{
    /* Budget 1 ns on the real clock: any callback overspends it. */
    bgl_loop *loop = new_loop();
    OK(bgl_loop_set_budget(loop, 1));
    recorder r = {0};
    rec_item it[3] = {{&r, 1}, {&r, 2}, {&r, 3}};
    for (int i = 0; i < 3; i++)
        OK(bgl_loop_call_soon(loop, rec_cb, &it[i]));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_SEQ(&r, 1, 2, 3);
    free_loop(loop);
}

/* ---- kick ----------------------------------------------------------------- */

static struct {
    bgl_loop *loop;
    int links;
    int limit;
} chain;

static void chain_link(void *ud)
{
    (void)ud;
    clk.now += STEP;
    if (++chain.links < chain.limit)
        OK(bgl_loop_call_soon(chain.loop, chain_link, NULL));
}

Test(budget, kick_iterates_while_work_keeps_becoming_ready)
{
    bgl_loop *loop = chain.loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    chain.limit = 5;
    OK(bgl_loop_call_soon(loop, chain_link, NULL));
    EXPECT_RC(bgl_loop_kick(loop, 0, -1), 5); /* run_once would stop after 1 */
    cr_assert_eq(chain.links, 5);
    EXPECT_RC(bgl_loop_kick(loop, 0, -1), 0);
    free_loop(loop);
}

Test(budget, kick_budget_bounds_an_endless_chain)
{
    bgl_loop *loop = chain.loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    chain.limit = 1000000;
    OK(bgl_loop_call_soon(loop, chain_link, NULL));
    int n = bgl_loop_kick(loop, 0, 5 * STEP + STEP / 2);
    cr_assert(n >= 1 && n <= 7, "kick with a budget of ~5 links ran %d", n);
    cr_assert_eq(chain.links, n);
    chain.limit = 0; /* let the queued link end the chain */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    free_loop(loop);
}

Test(budget, kick_budget_cuts_a_single_busy_iteration)
{
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &clk, T0);
    recorder r = {0};
    rec_item it[6];
    for (int i = 0; i < 6; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    }
    int n = bgl_loop_kick(loop, 0, 2 * STEP + STEP / 2);
    cr_assert(n >= 1 && n <= 4, "kick with a budget of ~3 callbacks ran %d", n);
    cr_assert_eq(r.n, n);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 6 - n); /* the rest, in order */
    EXPECT_SEQ(&r, 1, 2, 3, 4, 5, 6);
    free_loop(loop);
}

/* A request/response within one kick: the watcher reads a request, then
 * waits for writability to answer it. */
static struct {
    bgl_io *io;
    int state; /* 0 reading, 1 answering, 2 done */
} server;

static void serve(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)ud;
    if (server.state == 0 && (revents & BGL_IO_READ)) {
        char buf[16];
        cr_assert_gt(read(fd, buf, sizeof buf), 0);
        server.state = 1;
        OK(bgl_io_set_events(io, BGL_IO_WRITE));
    } else if (server.state == 1 && (revents & BGL_IO_WRITE)) {
        cr_assert_eq(write(fd, "pong", 4), 4);
        server.state = 2;
        OK(bgl_io_set_events(io, BGL_IO_READ));
    }
}

Test(budget, kick_reads_handles_and_answers_a_request_in_one_call)
{
    bgl_loop *loop = new_loop();
    bgl_fd s[2];
    make_socketpair(s);
    OK(bgl_io_new(loop, s[0], BGL_IO_READ, serve, NULL, &server.io));
    cr_assert_eq(write(s[1], "ping", 4), 4);
    int n = bgl_loop_kick(loop, 0, -1);
    cr_assert_geq(n, 2, "kick dispatched %d", n);
    cr_assert_eq(server.state, 2, "the answer was not written within one kick");
    char buf[8] = {0};
    cr_assert_eq(read(s[1], buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "pong");
    OK(bgl_io_free(server.io));
    close_pair(s);
    free_loop(loop);
}

Test(budget, kick_waits_at_most_its_timeout_when_idle)
{
    bgl_loop *loop = new_loop();
    uint64_t start = bgl_monotonic_ns();
    EXPECT_RC(bgl_loop_kick(loop, 10 * MS, -1), 0);
    cr_assert_lt(bgl_monotonic_ns() - start, (uint64_t)(30 * SEC));
    free_loop(loop);
}

static int arrived;
static void note_arrival(void *ud)
{
    (void)ud;
    arrived++;
}

static void *post_later(void *arg)
{
    sleep_ns(20 * MS);
    bgl_loop_call_threadsafe(arg, note_arrival, NULL, NULL);
    return NULL;
}

Test(budget, kick_returns_when_a_call_arrives_during_its_wait)
{
    bgl_loop *loop = new_loop();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_later, loop), 0);
    uint64_t start = bgl_monotonic_ns();
    EXPECT_RC(bgl_loop_kick(loop, 60 * SEC, -1), 1);
    cr_assert_lt(bgl_monotonic_ns() - start, (uint64_t)(30 * SEC));
    pthread_join(th, NULL);
    cr_assert_eq(arrived, 1);
    free_loop(loop);
}

Test(budget, kick_goes_on_despite_a_stop_requested_before_it_and_leaves_it_pending)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item a = {&r, 1};
    OK(bgl_loop_stop(loop, 9));
    OK(bgl_loop_call_soon(loop, rec_cb, &a));
    EXPECT_RC(bgl_loop_kick(loop, 0, -1), 1);
    EXPECT_RC(bgl_loop_run(loop), 9); /* still pending for run() */
    free_loop(loop);
}

Test(budget, kick_zero_budget_is_einval)
{
    bgl_loop *loop = new_loop();
    EXPECT_RC(bgl_loop_kick(loop, 0, 0), -EINVAL);
    free_loop(loop);
}
