/* test_service_late_closes.c - stops that wait for a close they did not
 * start: what was pushed onto a service's stack while the service was down
 * is closed at once, and a stop of everything issued while that close is
 * still running must finish (its done callback called) when it ends, by
 * timing out or by completing late. */
#include "lifecycle-harness.h"

TestSuite(service_late_closes, .timeout = BGL_TEST_TIMEOUT);

static int async_close(bgl_resource *res, void *object)
{
    *(bgl_resource **)object = res;
    return BGL_RESOURCE_ASYNC;
}

static void count_done(bgl_services *mgr, const char *owner, void *ud)
{
    (void)mgr, (void)owner;
    (*(int *)ud)++;
}

/* A stopped service's stack closes asynchronously; a stop of everything
 * arrives meanwhile. */
static fake_svc *closing_while_down(world *w, bgl_resource **token, int *done)
{
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.stop_timeout_ns = 0;   /* close timeout: the 1 s minimum */
    fake_svc *a = add_full(w, "a", "addon", NULL, &cfg);
    OK(bgl_resource_push(bgl_service_resources(a->svc), "sock", token, async_close, NULL, NULL));
    settle(w);
    cr_assert_not_null(*token, "a push onto a stopped service is closed at once");
    OK(bgl_services_stop_full(w->mgr, NULL, -1, count_done, done));
    settle(w);
    cr_assert_eq(bgl_services_active(w->mgr, NULL), 1, "the close is still running");
    cr_assert_eq(*done, 0);
    return a;
}

Test(service_late_closes, stop_done_after_the_close_times_out)
{
    world w;
    world_init(&w);
    bgl_resource *token = NULL;
    int done = 0;
    closing_while_down(&w, &token, &done);
    advance(&w, 1 * SEC);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    cr_assert_eq(done, 1, "the stop's done callback ran %d times", done);
    EXPECT_RC(bgl_resource_done(token, 0, NULL), -ETIMEDOUT);
    world_free(&w);
}

Test(service_late_closes, stop_done_after_the_close_completes)
{
    world w;
    world_init(&w);
    bgl_resource *token = NULL;
    int done = 0;
    closing_while_down(&w, &token, &done);
    advance(&w, 300 * MS);
    OK(bgl_resource_done(token, 0, NULL));
    settle(&w);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    cr_assert_eq(done, 1, "the stop's done callback ran %d times", done);
    world_free(&w);
}
