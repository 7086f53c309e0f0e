/* test_service_restart.c - restart policies, exponential backoff and its cap,
 * the start limit, stop timeouts (cancel, abandon), restart after stop. */
#include "lifecycle-harness.h"

#include <inttypes.h>
#include <limits.h>

TestSuite(service_restart, .timeout = BGL_TEST_TIMEOUT);

static bgl_service_config policy(bgl_restart_policy p)
{
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.restart = p;
    cfg.restart_delay_ns = 1 * SEC;
    cfg.restart_delay_max_ns = 4 * SEC;
    cfg.start_limit_burst = 0;
    return cfg;
}

static fake_svc *running(world *w, const char *name, bgl_service_config cfg)
{
    fake_svc *f = add_full(w, name, "addon", NULL, &cfg);
    f->ready_on_start = 1;
    OK(bgl_service_start(f->svc));
    settle(w);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    return f;
}

Test(service_restart, service_policy_no_never_restarts)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_NO));
    OK(bgl_service_exited(f->svc, 1, "crash"));
    advance(&w, 100 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert_eq(f->starts, 1);
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.wanted, 0);
    cr_assert_eq(info.restarts, 0);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 1);
    world_free(&w);
}

Test(service_restart, service_policy_on_failure_restarts_failures_only)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_ON_FAILURE));
    OK(bgl_service_exited(f->svc, 1, "crash"));
    settle(&w);
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.restart_pending, 1);
    cr_assert_eq(info.restart_at_ns, T0 + 1 * SEC);
    advance(&w, 1 * SEC);
    cr_assert_eq(f->starts, 2);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    /* The last error stays visible while it runs again. */
    cr_assert_str_eq(bgl_service_error(f->svc), "crash");
    OK(bgl_service_exited(f->svc, 0, NULL));
    advance(&w, 100 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_EXITED);
    cr_assert_eq(f->starts, 2);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);
    world_free(&w);
}

Test(service_restart, service_policy_always_restarts_clean_exits)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_ALWAYS));
    OK(bgl_service_exited(f->svc, 0, NULL));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_EXITED);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 1);   /* restart pending */
    advance(&w, 1 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    cr_assert_eq(f->starts, 2);
    world_free(&w);
}

/* Fail the service each time it runs; return the delay until it restarted. */
static uint64_t fail_and_measure(world *w, fake_svc *f)
{
    int before = f->starts;
    OK(bgl_service_exited(f->svc, 1, "crash"));
    settle(w);
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.restart_pending, 1);
    uint64_t delay = info.restart_at_ns - loop_now(w->loop);
    /* One nanosecond early: not yet. */
    advance(w, delay - 1);
    cr_assert_eq(f->starts, before);
    advance(w, 1);
    cr_assert_eq(f->starts, before + 1);
    return delay;
}

Test(service_restart, service_backoff_doubles_up_to_the_cap)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_ON_FAILURE));
    const uint64_t want[] = {1 * SEC, 2 * SEC, 4 * SEC, 4 * SEC, 4 * SEC};
    for (int i = 0; i < 5; i++) {
        uint64_t got = fail_and_measure(&w, f);
        cr_assert_eq(got, want[i], "restart %d after %llu ns, expected %llu", i + 1,
                     (unsigned long long)got, (unsigned long long)want[i]);
    }
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.restarts, 5);
    world_free(&w);
}

Test(service_restart, service_restart_time_saturates_for_a_huge_delay)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_ALWAYS);
    cfg.restart_delay_ns = UINT64_MAX;
    cfg.restart_delay_max_ns = UINT64_MAX;
    fake_svc *f = running(&w, "a", cfg);
    OK(bgl_service_exited(f->svc, 0, NULL));
    settle(&w);
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.restart_pending, 1);
    cr_assert_eq(info.restart_at_ns, UINT64_MAX, "restart_at_ns %" PRIu64 " wrapped",
                 info.restart_at_ns);
    world_free(&w);
}

Test(service_restart, service_backoff_resets_after_a_stable_run_or_explicit_start)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_ON_FAILURE));
    cr_assert_eq(fail_and_measure(&w, f), 1 * SEC);
    cr_assert_eq(fail_and_measure(&w, f), 2 * SEC);
    /* Running at least restart_delay_max_ns resets the backoff. */
    advance(&w, 4 * SEC);
    cr_assert_eq(fail_and_measure(&w, f), 1 * SEC);
    cr_assert_eq(fail_and_measure(&w, f), 2 * SEC);
    /* So does an explicit stop and start. */
    OK(bgl_service_stop(f->svc));
    settle(&w);
    OK(bgl_service_start(f->svc));
    settle(&w);
    cr_assert_eq(fail_and_measure(&w, f), 1 * SEC);
    world_free(&w);
}

Test(service_restart, service_start_limit_exhausted_stays_failed)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_ALWAYS);
    cfg.start_limit_burst = 3;
    cfg.start_limit_interval_ns = 10 * SEC;
    fake_svc *f = running(&w, "a", cfg);          /* start 1 at T0 */
    fail_and_measure(&w, f);                        /* start 2 at T0+1 */
    fail_and_measure(&w, f);                        /* start 3 at T0+3 */
    OK(bgl_service_exited(f->svc, 1, "crash"));
    advance(&w, 4 * SEC);                           /* attempt 4 at T0+7 */
    cr_assert_eq(f->starts, 3);
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(f->svc), "start limit hit: 3 starts within 10 s");
    advance(&w, 100 * SEC);
    cr_assert_eq(f->starts, 3);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 1);
    /* An explicit start clears the history. */
    OK(bgl_service_start(f->svc));
    settle(&w);
    cr_assert_eq(f->starts, 4);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);
    world_free(&w);
}

Test(service_restart, service_start_limit_counts_only_recent_starts)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_ALWAYS);
    cfg.start_limit_burst = 2;
    cfg.start_limit_interval_ns = 3 * SEC;
    fake_svc *f = running(&w, "a", cfg);
    for (int i = 0; i < 6; i++) {
        advance(&w, 5 * SEC);   /* stable run: backoff back to 1 s */
        OK(bgl_service_exited(f->svc, 1, "crash"));
        advance(&w, 1 * SEC);
    }
    cr_assert_eq(f->starts, 7);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    world_free(&w);
}

Test(service_restart, service_stop_timeout_calls_cancel_and_marks_it)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_ALWAYS);
    cfg.stop_timeout_ns = 5 * SEC;
    fake_svc *f = running(&w, "a", cfg);
    f->exit_on_stop = 0;
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a stop:a");
    EXPECT_STATE(f, BGL_SERVICE_STOPPING);
    advance(&w, 5 * SEC - 1);
    EXPECT_LOG(&w, "");
    advance(&w, 1);
    EXPECT_LOG(&w, "cancel:a");
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(f->svc), "stop timed out after 5 s, cancelled");
    bgl_service_info info;
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert_eq(info.stop_timed_out, 1);
    cr_assert_eq(info.restart_pending, 0);   /* a requested stop: no restart */
    advance(&w, 100 * SEC);
    cr_assert_eq(f->starts, 1);
    world_free(&w);
}

Test(service_restart, service_stop_gives_up_on_a_service_that_ignores_cancel)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_NO);
    cfg.stop_timeout_ns = 2 * SEC;
    fake_svc *f = running(&w, "a", cfg);
    f->exit_on_stop = f->exit_on_cancel = 0;
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    advance(&w, 2 * SEC);
    EXPECT_LOG(&w, "start:a stop:a cancel:a");
    EXPECT_STATE(f, BGL_SERVICE_STOPPING);
    advance(&w, 2 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(f->svc),
                     "stop timed out after 2 s, cancelled; did not exit, abandoned");
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    /* A late report of the abandoned run is refused. */
    EXPECT_RC(bgl_service_exited(f->svc, 0, NULL), -ESRCH);
    world_free(&w);
}

static int plain_start(bgl_service *svc, void *ud)
{
    (void)ud;
    return bgl_service_ready(svc);
}

Test(service_restart, service_without_cancel_hook_is_abandoned_at_timeout)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = "bare";
    cfg.owner = "addon";
    cfg.stop_timeout_ns = 3 * SEC;
    const bgl_service_hooks hooks = {.start = plain_start};
    bgl_service *svc;
    OK(bgl_service_add(w.mgr, &cfg, &hooks, NULL, &svc));
    OK(bgl_service_start(svc));
    settle(&w);
    EXPECT_RC(bgl_service_get_state(svc), BGL_SERVICE_RUNNING);
    OK(bgl_service_stop(svc));
    settle(&w);
    advance(&w, 3 * SEC - 1);
    EXPECT_RC(bgl_service_get_state(svc), BGL_SERVICE_STOPPING);
    advance(&w, 1);
    EXPECT_RC(bgl_service_get_state(svc), BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(svc),
                     "stop timed out after 3 s, no cancel hook; abandoned");
    OK(bgl_service_remove(svc));
    world_free(&w);
}

Test(service_restart, service_restarts_after_stop_and_repeats_are_harmless)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_NO));
    OK(bgl_service_start(f->svc));
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    cr_assert_eq(f->starts, 1);
    OK(bgl_service_stop(f->svc));
    OK(bgl_services_stop(w.mgr, "addon"));
    settle(&w);
    OK(bgl_service_stop(f->svc));
    settle(&w);
    cr_assert_eq(f->stops, 1);
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);
    OK(bgl_service_start(f->svc));
    settle(&w);
    cr_assert_eq(f->starts, 2);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);

    /* Start requested while it is still stopping: it comes back after. */
    f->exit_on_stop = 0;
    OK(bgl_service_stop(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_STOPPING);
    OK(bgl_service_start(f->svc));
    settle(&w);
    cr_assert_eq(f->starts, 2);
    OK(bgl_service_exited(f->svc, 0, NULL));
    settle(&w);
    cr_assert_eq(f->starts, 3);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    f->exit_on_stop = 1;
    world_free(&w);
}

Test(service_restart, service_stop_during_restart_delay_cancels_the_restart)
{
    world w;
    world_init(&w);
    fake_svc *f = running(&w, "a", policy(BGL_RESTART_ALWAYS));
    OK(bgl_service_exited(f->svc, 1, "crash"));
    settle(&w);
    OK(bgl_service_stop(f->svc));
    advance(&w, 60 * SEC);
    cr_assert_eq(f->starts, 1);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    world_free(&w);
}

Test(service_restart, service_start_hook_error_fails_and_follows_the_policy)
{
    world w;
    world_init(&w);
    bgl_service_config cfg = policy(BGL_RESTART_ON_FAILURE);
    fake_svc *f = add_full(&w, "a", "addon", NULL, &cfg);
    f->start_rc = -EADDRINUSE;
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert(strstr(bgl_service_error(f->svc), "start hook failed"), "%s",
              bgl_service_error(f->svc));
    f->start_rc = 0;
    f->ready_on_start = 1;
    advance(&w, 1 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    cr_assert_eq(f->starts, 2);
    world_free(&w);
}

/* -INT_MIN does not exist: the text must not come from negating it
 * (undefined behaviour; glibc then says "Unknown error -2147483648"). */
Test(service_restart, service_start_hook_error_int_min_is_reported_as_unknown_error)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    f->start_rc = INT_MIN;
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(f->svc), "start hook failed: Unknown error");
    world_free(&w);
}

Test(service_restart, service_stop_while_starting_asks_it_to_stop)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_STARTING);
    f->exit_on_stop = 0;
    OK(bgl_service_stop(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_STOPPING);
    /* A late readiness report is refused, not applied. */
    EXPECT_RC(bgl_service_ready(f->svc), -ESRCH);
    OK(bgl_service_exited(f->svc, 0, NULL));
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);
    EXPECT_LOG(&w, "start:a stop:a");
    world_free(&w);
}
