/* test_service_deps.c - dependency order: readiness gating, linear and
 * diamond graphs, reverse stop order, unknown dependencies and cycles,
 * failure propagation (Requires=) and recovery. */
#include "lifecycle-harness.h"

TestSuite(service_deps, .timeout = BGL_TEST_TIMEOUT);

Test(service_deps, service_start_waits_for_readiness_of_linear_chain)
{
    world w;
    world_init(&w);
    fake_svc *c = add(&w, "c", DEPS("b"));
    fake_svc *b = add(&w, "b", DEPS("a"));
    fake_svc *a = add(&w, "a", NULL);
    OK(bgl_services_start(w.mgr, NULL));
    EXPECT_LOG(&w, "");   /* requests only: hooks run from the loop */
    settle(&w);
    EXPECT_LOG(&w, "start:a");
    EXPECT_STATE(a, BGL_SERVICE_STARTING);
    EXPECT_STATE(b, BGL_SERVICE_STOPPED);
    bgl_service_info info;
    OK(bgl_service_get_info(b->svc, &info));
    cr_assert_str_eq(info.waiting_for, "a");
    cr_assert_eq(info.wanted, 1);

    /* Nothing moves until a reports ready, however long we wait. */
    advance(&w, 60 * SEC);
    EXPECT_LOG(&w, "");
    ready(a);
    settle(&w);
    EXPECT_LOG(&w, "start:b");
    ready(b);
    settle(&w);
    EXPECT_LOG(&w, "start:c");
    ready(c);
    settle(&w);
    EXPECT_STATE(c, BGL_SERVICE_RUNNING);
    world_free(&w);
}

Test(service_deps, service_stop_runs_in_reverse_dependency_order)
{
    world w;
    world_init(&w);
    fake_svc *a = add(&w, "a", NULL);
    fake_svc *b = add(&w, "b", DEPS("a"));
    fake_svc *c = add(&w, "c", DEPS("b"));
    a->ready_on_start = b->ready_on_start = c->ready_on_start = 1;
    /* Exits are reported by the test, so each step is visible. */
    a->exit_on_stop = b->exit_on_stop = c->exit_on_stop = 0;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b start:c");
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "stop:c");
    EXPECT_STATE(b, BGL_SERVICE_RUNNING);
    OK(bgl_service_exited(c->svc, 0, NULL));
    settle(&w);
    EXPECT_LOG(&w, "stop:b");
    EXPECT_STATE(c, BGL_SERVICE_STOPPED);
    OK(bgl_service_exited(b->svc, 0, NULL));
    settle(&w);
    EXPECT_LOG(&w, "stop:a");
    OK(bgl_service_exited(a->svc, 0, NULL));
    settle(&w);
    EXPECT_STATE(a, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    world_free(&w);
}

Test(service_deps, service_diamond_starts_top_once_after_both_sides)
{
    world w;
    world_init(&w);
    fake_svc *top = add(&w, "top", DEPS("left", "right"));
    fake_svc *left = add(&w, "left", DEPS("base"));
    fake_svc *right = add(&w, "right", DEPS("base"));
    fake_svc *base = add(&w, "base", NULL);
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:base");
    ready(base);
    settle(&w);
    EXPECT_LOG(&w, "start:left start:right");
    ready(left);
    settle(&w);
    EXPECT_LOG(&w, "");   /* right is not ready yet */
    bgl_service_info info;
    OK(bgl_service_get_info(top->svc, &info));
    cr_assert_str_eq(info.waiting_for, "right");
    ready(right);
    settle(&w);
    EXPECT_LOG(&w, "start:top");
    ready(top);
    settle(&w);
    cr_assert_eq(base->starts, 1);
    cr_assert_eq(top->starts, 1);

    /* Stop: top first, then both sides, base last. */
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "stop:top stop:left stop:right stop:base");
    world_free(&w);
}

Test(service_deps, service_unknown_dependency_is_refused_naming_both)
{
    world w;
    world_init(&w);
    fake_svc *a = add(&w, "a", NULL);
    add(&w, "web", DEPS("a", "database"));
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ENOENT);
    const char *msg = bgl_services_last_error(w.mgr);
    cr_assert(strstr(msg, "'web'") && strstr(msg, "'database'"), "message: %s", msg);
    settle(&w);
    EXPECT_LOG(&w, "");   /* nothing started, not even a */
    EXPECT_STATE(a, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    /* Registering the missing one fixes it. */
    fake_svc *db = add(&w, "database", NULL);
    db->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "");
    settle(&w);
    EXPECT_LOG(&w, "start:a start:database");
    world_free(&w);
}

Test(service_deps, service_cycle_is_refused_naming_the_cycle)
{
    world w;
    world_init(&w);
    add(&w, "ok", NULL);
    add(&w, "x", DEPS("y"));
    add(&w, "y", DEPS("z"));
    add(&w, "z", DEPS("x"));
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ELOOP);
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "dependency cycle: x -> y -> z -> x");
    settle(&w);
    EXPECT_LOG(&w, "");
    /* Starting just the service outside the cycle still works. */
    fake_svc *ok = &w.svcs[0];
    OK(bgl_service_start(ok->svc));
    settle(&w);
    EXPECT_LOG(&w, "start:ok");
    /* Starting one service of the cycle is refused too. */
    EXPECT_RC(bgl_service_start(w.svcs[2].svc), -ELOOP);
    cr_assert(strstr(bgl_services_last_error(w.mgr), "y -> z -> x -> y"), "%s",
              bgl_services_last_error(w.mgr));
    world_free(&w);
}

Test(service_deps, service_error_text_belongs_to_the_call_that_set_it)
{
    world w;
    world_init(&w);
    add(&w, "x", DEPS("y"));
    add(&w, "y", DEPS("x"));
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ELOOP);
    cr_assert(strstr(bgl_services_last_error(w.mgr), "cycle"));
    /* A later refusal for another reason says its own reason. */
    EXPECT_RC(bgl_services_start(w.mgr, ""), -EINVAL);
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "an owner must be a non-empty string");
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ELOOP);
    EXPECT_RC(bgl_services_stop_full(w.mgr, "", -1, NULL, NULL), -EINVAL);
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "an owner must be a non-empty string");
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ELOOP);
    EXPECT_RC(bgl_services_remove(w.mgr, ""), -EINVAL);
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "an owner must be a non-empty string");
    /* A call that succeeds leaves no text behind. */
    OK(bgl_services_stop(w.mgr, NULL));
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "");
    settle(&w);
    world_free(&w);
}

Test(service_deps, service_failed_dependency_stops_dependents_and_they_return)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.restart = BGL_RESTART_ON_FAILURE;
    cfg.restart_delay_ns = 1 * SEC;
    cfg.restart_delay_max_ns = 8 * SEC;
    fake_svc *db = add_full(&w, "db", "addon", NULL, &cfg);
    fake_svc *api = add(&w, "api", DEPS("db"));
    fake_svc *ui = add(&w, "ui", DEPS("api"));
    db->ready_on_start = api->ready_on_start = ui->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:db start:api start:ui");

    OK(bgl_service_exited(db->svc, 1, "connection lost"));
    EXPECT_STATE(db, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(db->svc), "connection lost");
    settle(&w);
    EXPECT_LOG(&w, "stop:ui stop:api");
    EXPECT_STATE(api, BGL_SERVICE_STOPPED);
    EXPECT_STATE(ui, BGL_SERVICE_STOPPED);
    /* They stay wanted, waiting; the restart delay keeps all active. */
    bgl_service_info info;
    OK(bgl_service_get_info(api->svc, &info));
    cr_assert_eq(info.wanted, 1);
    cr_assert_str_eq(info.waiting_for, "db");
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 3);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);

    advance(&w, 1 * SEC);
    EXPECT_LOG(&w, "start:db start:api start:ui");
    EXPECT_STATE(ui, BGL_SERVICE_RUNNING);
    OK(bgl_service_get_info(db->svc, &info));
    cr_assert_eq(info.restarts, 1);
    world_free(&w);
}

Test(service_deps, service_dependency_failed_for_good_leaves_dependents_inactive)
{
    world w;
    world_init(&w);
    fake_svc *db = add(&w, "db", NULL);   /* restart = no */
    fake_svc *api = add(&w, "api", DEPS("db"));
    db->ready_on_start = api->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    OK(bgl_service_exited(db->svc, 1, "boom"));
    settle(&w);
    EXPECT_LOG(&w, "start:db start:api stop:api");
    EXPECT_STATE(api, BGL_SERVICE_STOPPED);
    /* Nothing can bring db back: nothing is left, and the failure shows. */
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 1);
    /* An explicit start of db brings api back too. */
    OK(bgl_service_start(db->svc));
    settle(&w);
    EXPECT_LOG(&w, "start:db start:api");
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);
    world_free(&w);
}

Test(service_deps, service_clean_exit_of_dependency_also_stops_dependents)
{
    world w;
    world_init(&w);
    fake_svc *a = add(&w, "a", NULL);
    fake_svc *b = add(&w, "b", DEPS("a"));
    a->ready_on_start = b->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    OK(bgl_service_exited(a->svc, 0, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b stop:b");
    EXPECT_STATE(a, BGL_SERVICE_EXITED);
    EXPECT_STATE(b, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    world_free(&w);
}

Test(service_deps, service_start_of_one_pulls_in_its_dependencies_only)
{
    world w;
    world_init(&w);
    fake_svc *a = add_full(&w, "a", "core", NULL, NULL);
    fake_svc *b = add_full(&w, "b", "addon", DEPS("a"), NULL);
    fake_svc *other = add_full(&w, "other", "core", NULL, NULL);
    a->ready_on_start = 1;
    OK(bgl_service_start(b->svc));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b");
    EXPECT_STATE(other, BGL_SERVICE_STOPPED);
    /* Stopping the dependency stops its dependent first. */
    OK(bgl_service_stop(a->svc));
    settle(&w);
    EXPECT_LOG(&w, "stop:b stop:a");
    world_free(&w);
}

Test(service_deps, service_state_callback_sees_every_transition)
{
    world w;
    world_init(&w);
    fake_svc *a = add(&w, "a", NULL);
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    ready(a);
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    cr_assert_str_eq(w.transitions,
                     "a:stopped>starting a:starting>running a:running>stopping "
                     "a:stopping>stopped");
    bgl_service_info info;
    OK(bgl_service_get_info(a->svc, &info));
    cr_assert_eq(info.changed_ns, T0);
    world_free(&w);
}
