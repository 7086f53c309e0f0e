/* test_service_api.c - registration, lookup, per-owner isolation, "nothing
 * left", exit code, keep-alive, removal, and bad input for every function. */
#include "lifecycle-harness.h"

TestSuite(service_api, .timeout = BGL_TEST_TIMEOUT);

Test(service_api, service_owners_are_started_and_stopped_in_isolation)
{
    world w;
    world_init(&w);
    fake_svc *a1 = add_full(&w, "a1", "addon_a", NULL, NULL);
    fake_svc *a2 = add_full(&w, "a2", "addon_a", DEPS("a1"), NULL);
    fake_svc *b1 = add_full(&w, "b1", "addon_b", NULL, NULL);
    a1->ready_on_start = a2->ready_on_start = b1->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, "addon_a"));
    settle(&w);
    EXPECT_LOG(&w, "start:a1 start:a2");
    EXPECT_STATE(b1, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_active(w.mgr, "addon_a"), 2);
    EXPECT_RC(bgl_services_active(w.mgr, "addon_b"), 0);
    OK(bgl_services_start(w.mgr, "addon_b"));
    settle(&w);
    EXPECT_LOG(&w, "start:b1");
    OK(bgl_services_stop(w.mgr, "addon_a"));
    settle(&w);
    EXPECT_LOG(&w, "stop:a2 stop:a1");
    EXPECT_STATE(b1, BGL_SERVICE_RUNNING);
    EXPECT_RC(bgl_services_active(w.mgr, "addon_a"), 0);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 1);
    OK(bgl_services_start(w.mgr, "nobody"));   /* no services: nothing to do */
    OK(bgl_services_stop(w.mgr, "nobody"));
    settle(&w);
    EXPECT_LOG(&w, "");

    bgl_service *list[4];
    EXPECT_RC(bgl_services_list(w.mgr, "addon_a", list, 4), 2);
    cr_assert(list[0] == a1->svc && list[1] == a2->svc);
    EXPECT_RC(bgl_services_list(w.mgr, NULL, list, 1), 3);
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 0), 3);
    bgl_service *found = NULL;
    OK(bgl_services_find(w.mgr, "b1", &found));
    cr_assert_eq(found, b1->svc);
    EXPECT_RC(bgl_services_find(w.mgr, "zzz", &found), -ENOENT);
    cr_assert_str_eq(bgl_service_owner(b1->svc), "addon_b");
    cr_assert_str_eq(bgl_service_name(b1->svc), "b1");
    cr_assert_eq(bgl_service_userdata(b1->svc), b1);
    cr_assert_eq(bgl_service_manager(b1->svc), w.mgr);
    world_free(&w);
}

Test(service_api, service_nothing_left_counts_services_and_tasks)
{
    world w;
    world_init(&w);
    bgl_tasks *tasks = NULL;
    OK(bgl_tasks_new(&tasks));
    OK(bgl_services_set_tasks(w.mgr, tasks));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    fake_svc *a = add(&w, "a", NULL);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);   /* registered, not wanted */
    OK(bgl_services_start(w.mgr, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);   /* wanted, about to start */
    settle(&w);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_service_exited(a->svc, 0, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);

    bgl_task *t = NULL;
    OK(bgl_task_new(tasks, "addon", "t", NULL, NULL, &t));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_services_set_tasks(w.mgr, NULL));          /* detached: not counted */
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    OK(bgl_services_set_tasks(w.mgr, tasks));
    OK(bgl_task_finish(t, BGL_TASK_DONE, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    EXPECT_RC(bgl_services_nothing_left(NULL), -EINVAL);
    OK(bgl_tasks_free(tasks));
    world_free(&w);
}

/* ---- keep-alive: bgl_loop_run() ends with the services ------------------- */

static void exit_ok(void *ud)
{
    OK(bgl_service_exited(ud, 0, NULL));
}

static void exit_failed(void *ud)
{
    OK(bgl_service_exited(ud, 1, "gave up"));
}

static int start_then_exit_ok(bgl_service *svc, void *ud)
{
    (void)ud;
    OK(bgl_service_ready(svc));
    return bgl_loop_call_soon(*(bgl_loop **)bgl_service_userdata(svc), exit_ok, svc);
}

static int start_then_fail(bgl_service *svc, void *ud)
{
    (void)ud;
    return bgl_loop_call_soon(*(bgl_loop **)bgl_service_userdata(svc), exit_failed, svc);
}

static int start_forever(bgl_service *svc, void *ud)
{
    (void)ud;
    return bgl_service_ready(svc);
}

static void stop_exits(bgl_service *svc, void *ud)
{
    (void)ud;
    OK(bgl_service_exited(svc, 0, NULL));
}

static bgl_service *add_hooked(world *w, const char *name, int (*start)(bgl_service *, void *))
{
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = name;
    cfg.owner = "c";
    const bgl_service_hooks hooks = {.start = start, .stop = stop_exits};
    bgl_service *svc = NULL;
    OK(bgl_service_add(w->mgr, &cfg, &hooks, &w->loop, &svc));
    return svc;
}

Test(service_api, service_keepalive_run_returns_when_services_end)
{
    world w;
    world_init(&w);
    add_hooked(&w, "quick", start_then_exit_ok);
    OK(bgl_services_set_keepalive(w.mgr, 1));
    OK(bgl_services_start(w.mgr, NULL));
    EXPECT_RC(bgl_loop_run(w.loop), 0);
    EXPECT_RC(bgl_services_active(w.mgr, NULL), 0);
    world_free(&w);
}

Test(service_api, service_keepalive_exit_code_reports_failure_for_good)
{
    world w;
    world_init(&w);
    add_hooked(&w, "quick", start_then_exit_ok);
    add_hooked(&w, "broken", start_then_fail);
    OK(bgl_services_set_keepalive(w.mgr, 1));
    OK(bgl_services_start(w.mgr, NULL));
    EXPECT_RC(bgl_loop_run(w.loop), 1);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 1);
    world_free(&w);
}

static void ignore_cancel(bgl_task *task, void *ud)
{
    (void)task, (void)ud;
}

typedef struct ka_ctx {
    bgl_loop *loop;
    bgl_services *mgr;
    bgl_task *task;
    int stopped_before_task_done;
} ka_ctx;

static void request_stop(void *ud)
{
    OK(bgl_services_stop(ud, NULL));
}

static void finish_task(void *ud)
{
    ka_ctx *c = ud;
    /* The loop is still running although the service is gone: the stop
     * awaits the task it cancelled. */
    c->stopped_before_task_done = bgl_services_active(c->mgr, "c") == 1;
    OK(bgl_task_finish(c->task, BGL_TASK_DONE, NULL));
}

/* Ready, then (next iteration) a stop request - as a SIGTERM source would. */
static int start_then_request_stop(bgl_service *svc, void *ud)
{
    ka_ctx *c = ud;
    OK(bgl_service_ready(svc));
    return bgl_loop_call_soon(c->loop, request_stop, c->mgr);
}

/* Exit at once, and let the task finish a little later. */
static void stop_then_finish_task(bgl_service *svc, void *ud)
{
    ka_ctx *c = ud;
    OK(bgl_service_exited(svc, 0, NULL));
    OK(bgl_loop_call_soon(c->loop, finish_task, c));
}

Test(service_api, service_keepalive_ends_on_stop_request_after_tasks)
{
    world w;
    world_init(&w);
    bgl_tasks *tasks = NULL;
    OK(bgl_tasks_new(&tasks));
    ka_ctx c = {.loop = w.loop, .mgr = w.mgr};
    /* Its cancel hook does not finish it: the task ends on its own, later. */
    OK(bgl_task_new(tasks, "c", "upload", ignore_cancel, NULL, &c.task));
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = "server";
    cfg.owner = "c";
    const bgl_service_hooks hooks = {.start = start_then_request_stop,
                                     .stop = stop_then_finish_task};
    bgl_service *svc = NULL;
    OK(bgl_service_add(w.mgr, &cfg, &hooks, &c, &svc));
    OK(bgl_services_set_tasks(w.mgr, tasks));
    OK(bgl_services_set_keepalive(w.mgr, 1));
    OK(bgl_services_start(w.mgr, NULL));
    EXPECT_RC(bgl_loop_run(w.loop), 0);
    EXPECT_RC(bgl_service_get_state(svc), BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_task_get_state(c.task), BGL_TASK_DONE);
    cr_assert_eq(c.stopped_before_task_done, 1);
    OK(bgl_services_set_keepalive(w.mgr, 0));
    OK(bgl_services_set_tasks(w.mgr, NULL));
    OK(bgl_tasks_free(tasks));
    world_free(&w);
}

/* ---- registration and removal --------------------------------------------- */

Test(service_api, service_duplicate_names_and_bad_configs_are_refused)
{
    world w;
    world_init(&w);
    add(&w, "web", NULL);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = "web";
    cfg.owner = "other";
    bgl_service *svc = NULL;
    const bgl_service_hooks hooks = {.start = start_forever};
    EXPECT_RC(bgl_service_add(w.mgr, &cfg, &hooks, NULL, &svc), -EEXIST);
    cr_assert(strstr(bgl_services_last_error(w.mgr), "'web'"), "%s",
              bgl_services_last_error(w.mgr));

    cfg.name = "new";
    bgl_service_config bad = cfg;
    bad.name = NULL;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.name = "";
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.owner = NULL;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.owner = "";
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.restart = (bgl_restart_policy)7;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.stop_timeout_ns = (uint64_t)INT64_MAX + 1;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.close_timeout_ns = (uint64_t)INT64_MAX + 1;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.restart_delay_ns = 10 * SEC, bad.restart_delay_max_ns = 1 * SEC;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.start_limit_interval_ns = 0;
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.depends_on = DEPS("new");
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    bad = cfg, bad.depends_on = DEPS("");
    EXPECT_RC(bgl_service_add(w.mgr, &bad, &hooks, NULL, &svc), -EINVAL);
    const bgl_service_hooks no_start = {.stop = stop_exits};
    EXPECT_RC(bgl_service_add(w.mgr, &cfg, &no_start, NULL, &svc), -EINVAL);
    EXPECT_RC(bgl_service_add(w.mgr, &cfg, NULL, NULL, &svc), -EINVAL);
    EXPECT_RC(bgl_service_add(w.mgr, NULL, &hooks, NULL, &svc), -EINVAL);
    EXPECT_RC(bgl_service_add(NULL, &cfg, &hooks, NULL, &svc), -EINVAL);
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 0), 1);   /* nothing added */

    /* No start limit (burst 0) needs no interval; out may be NULL. */
    cfg.start_limit_burst = 0;
    cfg.start_limit_interval_ns = 0;
    OK(bgl_service_add(w.mgr, &cfg, &hooks, NULL, NULL));
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 0), 2);
    world_free(&w);
}

static int remove_from_hook(bgl_service *svc, void *ud)
{
    (void)ud;
    EXPECT_RC(bgl_service_remove(svc), -EBUSY);
    EXPECT_RC(bgl_services_free(bgl_service_manager(svc)), -EBUSY);
    return bgl_service_ready(svc);
}

Test(service_api, service_remove_only_when_idle)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    f->ready_on_start = 1;
    OK(bgl_service_start(f->svc));
    EXPECT_RC(bgl_service_remove(f->svc), -EBUSY);   /* wanted */
    settle(&w);
    EXPECT_RC(bgl_service_remove(f->svc), -EBUSY);   /* running */
    EXPECT_RC(bgl_services_free(w.mgr), -EBUSY);
    OK(bgl_service_stop(f->svc));
    settle(&w);
    OK(bgl_service_remove(f->svc));
    cr_assert_eq(f->destroyed, 1);
    bgl_service *svc = NULL;
    EXPECT_RC(bgl_services_find(w.mgr, "a", &svc), -ENOENT);
    w.n = 0;   /* removed: world_free must not expect another destroy */

    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.name = "a";   /* the name is free again */
    cfg.owner = "addon";
    const bgl_service_hooks hooks = {.start = remove_from_hook};
    OK(bgl_service_add(w.mgr, &cfg, &hooks, NULL, &svc));
    OK(bgl_service_start(svc));
    settle(&w);
    EXPECT_RC(bgl_service_get_state(svc), BGL_SERVICE_RUNNING);
    world_free(&w);
}

/* A destroy hook is a hook: freeing the manager or removing another service
 * from it must be refused, not free what the caller is still using. */
typedef struct reentrant_destroy {
    bgl_services *mgr;
    bgl_service *other;       /* removed from the hook, if not NULL */
    int free_rc, remove_rc, calls;
} reentrant_destroy;

static void destroy_reenters(void *ud)
{
    reentrant_destroy *d = ud;
    d->calls++;
    d->free_rc = bgl_services_free(d->mgr);
    d->remove_rc = d->other ? bgl_service_remove(d->other) : 0;
}

static int start_nothing(bgl_service *svc, void *ud)
{
    (void)svc, (void)ud;
    return 0;
}

Test(service_api, service_destroy_hook_cannot_free_the_manager_or_remove_services)
{
    world w;
    world_init(&w);
    const bgl_service_hooks hooks = {.start = start_nothing, .destroy = destroy_reenters};
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.owner = "addon";
    reentrant_destroy da = {.mgr = w.mgr}, db = {.mgr = w.mgr};
    bgl_service *a, *b;
    cfg.name = "a";
    OK(bgl_service_add(w.mgr, &cfg, &hooks, &da, &a));
    cfg.name = "b";
    OK(bgl_service_add(w.mgr, &cfg, &hooks, &db, &b));

    /* bgl_service_remove() -> destroy hook -> bgl_services_free() */
    OK(bgl_service_remove(a));
    cr_assert_eq(da.calls, 1);
    EXPECT_RC(da.free_rc, -EBUSY);

    /* bgl_services_free() -> destroy hook -> bgl_service_remove(c) */
    cfg.name = "c";
    reentrant_destroy dc = {.mgr = w.mgr};
    bgl_service *c;
    OK(bgl_service_add(w.mgr, &cfg, &hooks, &dc, &c));
    db.other = c;
    settle(&w);
    OK(bgl_services_free(w.mgr));
    cr_assert_eq(db.calls, 1);
    EXPECT_RC(db.free_rc, -EBUSY);
    EXPECT_RC(db.remove_rc, -EBUSY);
    cr_assert_eq(dc.calls, 1, "c destroyed %d times", dc.calls);
    free_loop(w.loop);
}

/* bgl_services_free() -> destroy hook -> queries and start on the manager:
 * the services already destroyed must not be reachable any more. */
typedef struct destroy_probe {
    bgl_services *mgr;
    int calls, listed, start_rc;
} destroy_probe;

static void destroy_queries(void *ud)
{
    destroy_probe *d = ud;
    d->calls++;
    bgl_service *all[4];
    d->listed = bgl_services_list(d->mgr, NULL, all, 4);
    d->start_rc = bgl_services_start(d->mgr, NULL);
}

Test(service_api, service_destroy_hooks_run_by_free_see_no_destroyed_service)
{
    world w;
    world_init(&w);
    const bgl_service_hooks hooks = {.start = start_nothing, .destroy = destroy_queries};
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.owner = "addon";
    destroy_probe d[3] = {{.mgr = w.mgr}, {.mgr = w.mgr}, {.mgr = w.mgr}};
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        cfg.name = names[i];
        OK(bgl_service_add(w.mgr, &cfg, &hooks, &d[i], NULL));
    }
    OK(bgl_services_free(w.mgr));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(d[i].calls, 1, "%s destroyed %d times", names[i], d[i].calls);
        EXPECT_RC(d[i].listed, 0);
        EXPECT_RC(d[i].start_rc, 0);
    }
    free_loop(w.loop);
}

Test(service_api, service_reports_in_wrong_states_are_refused)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    EXPECT_RC(bgl_service_ready(f->svc), -ESRCH);
    EXPECT_RC(bgl_service_exited(f->svc, 0, NULL), -ESRCH);
    OK(bgl_service_start(f->svc));
    settle(&w);
    ready(f);
    EXPECT_RC(bgl_service_ready(f->svc), -EALREADY);
    OK(bgl_service_exited(f->svc, 1, NULL));
    cr_assert_str_eq(bgl_service_error(f->svc), "failed");
    EXPECT_RC(bgl_service_exited(f->svc, 1, NULL), -ESRCH);
    EXPECT_RC(bgl_service_ready(f->svc), -ESRCH);
    world_free(&w);
}

Test(service_api, service_bad_input_is_refused)
{
    world w;
    world_init(&w);
    bgl_services *m = NULL;
    bgl_service *svc = NULL;
    bgl_service_info info;
    bgl_resources *rs = NULL;
    EXPECT_RC(bgl_services_new(NULL, &m), -EINVAL);
    EXPECT_RC(bgl_services_new(w.loop, NULL), -EINVAL);
    EXPECT_RC(bgl_services_free(NULL), -EINVAL);
    EXPECT_RC(bgl_services_set_state_cb(NULL, NULL, NULL), -EINVAL);
    cr_assert_null(bgl_services_last_error(NULL));
    EXPECT_RC(bgl_services_list(NULL, NULL, NULL, 0), -EINVAL);
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 2), -EINVAL);
    EXPECT_RC(bgl_services_find(NULL, "a", &svc), -EINVAL);
    EXPECT_RC(bgl_services_find(w.mgr, NULL, &svc), -EINVAL);
    EXPECT_RC(bgl_services_find(w.mgr, "a", NULL), -EINVAL);
    EXPECT_RC(bgl_services_start(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_stop(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_active(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_exit_code(NULL), -EINVAL);
    EXPECT_RC(bgl_services_set_keepalive(NULL, 1), -EINVAL);
    EXPECT_RC(bgl_services_set_tasks(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_stop_full(NULL, NULL, -1, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_stop_full(w.mgr, "", -1, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_remove(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_remove(w.mgr, ""), -EINVAL);
    EXPECT_RC(bgl_services_list_failed(NULL, NULL, 0), -EINVAL);
    EXPECT_RC(bgl_services_list_failed(w.mgr, NULL, 1), -EINVAL);
    EXPECT_RC(bgl_services_nothing_left(NULL), -EINVAL);
    cr_assert_null(bgl_services_loop_resources(NULL));
    EXPECT_RC(bgl_services_owner_resources(NULL, "o", &rs), -EINVAL);
    bgl_service_config_init(NULL);   /* harmless */
    EXPECT_RC(bgl_service_remove(NULL), -EINVAL);
    EXPECT_RC(bgl_service_start(NULL), -EINVAL);
    EXPECT_RC(bgl_service_stop(NULL), -EINVAL);
    EXPECT_RC(bgl_service_ready(NULL), -EINVAL);
    EXPECT_RC(bgl_service_exited(NULL, 0, NULL), -EINVAL);
    EXPECT_RC(bgl_service_get_info(NULL, &info), -EINVAL);
    EXPECT_RC(bgl_service_get_state(NULL), -EINVAL);
    cr_assert_null(bgl_service_name(NULL));
    cr_assert_null(bgl_service_owner(NULL));
    cr_assert_null(bgl_service_error(NULL));
    cr_assert_null(bgl_service_userdata(NULL));
    cr_assert_null(bgl_service_manager(NULL));
    cr_assert_str_eq(bgl_service_state_name(-1), "unknown");
    cr_assert_str_eq(bgl_service_state_name(BGL_SERVICE_EXITED), "exited");
    cr_assert_str_eq(bgl_restart_policy_name(BGL_RESTART_ON_FAILURE), "on-failure");
    cr_assert_str_eq(bgl_restart_policy_name(9), "unknown");
    fake_svc *f = add(&w, "a", NULL);
    EXPECT_RC(bgl_service_get_info(f->svc, NULL), -EINVAL);
    OK(bgl_service_get_info(f->svc, &info));
    cr_assert(info.state == BGL_SERVICE_STOPPED && !info.wanted && info.error == NULL);
    cr_assert_str_eq(info.name, "a");
    cr_assert_str_eq(info.owner, "addon");
    world_free(&w);
}

/* ---- reentrancy ------------------------------------------------------------- */

typedef struct end_in_cb {
    bgl_service_state when;
    int ended;
} end_in_cb;

/* Reports the end as soon as the service enters `when`. */
static void end_on_state(bgl_service *svc, bgl_service_state old_state,
                         bgl_service_state new_state, void *ud)
{
    (void)old_state;
    end_in_cb *e = ud;
    if (new_state == e->when && !e->ended) {
        e->ended = 1;
        OK(bgl_service_exited(svc, 0, NULL));
    }
}

Test(service_api, service_end_reported_from_state_callback_skips_the_hook)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    end_in_cb e = {.when = BGL_SERVICE_STARTING};
    OK(bgl_services_set_state_cb(w.mgr, end_on_state, &e));
    OK(bgl_service_start(f->svc));
    settle(&w);
    cr_assert_eq(f->starts, 0);   /* it ended before there was anything to launch */
    EXPECT_STATE(f, BGL_SERVICE_EXITED);

    /* Same for the stop hook. */
    OK(bgl_services_set_state_cb(w.mgr, NULL, NULL));
    f->ready_on_start = 1;
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    e = (end_in_cb){.when = BGL_SERVICE_STOPPING};
    OK(bgl_services_set_state_cb(w.mgr, end_on_state, &e));
    OK(bgl_service_stop(f->svc));
    settle(&w);
    cr_assert_eq(f->stops, 0);
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);
    advance(&w, 60 * SEC);   /* no stop timeout left behind */
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);
    cr_assert_eq(f->cancels, 0);
    world_free(&w);
}

Test(service_api, service_keepalive_survives_its_task_registry_being_freed)
{
    world w;
    world_init(&w);
    bgl_tasks *tasks = NULL;
    OK(bgl_tasks_new(&tasks));
    bgl_task *t = NULL;
    OK(bgl_task_new(tasks, "c", "t", NULL, NULL, &t));
    OK(bgl_services_set_tasks(w.mgr, tasks));
    OK(bgl_services_set_keepalive(w.mgr, 1));
    settle(&w);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_tasks_free(tasks));   /* the manager stops counting it */
    settle(&w);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    world_free(&w);
}

/* Two managers counting one registry both hear about it: each releases its
 * hold on the loop when the last task ends, and neither keeps a dangling
 * pointer once the registry is freed. */
Test(service_api, service_keepalive_of_two_managers_on_one_task_registry)
{
    world w;
    world_init(&w);
    bgl_services *second = NULL;
    OK(bgl_services_new(w.loop, &second));
    bgl_tasks *tasks = NULL;
    OK(bgl_tasks_new(&tasks));
    bgl_task *t = NULL;
    OK(bgl_task_new(tasks, "c", "t", NULL, NULL, &t));
    OK(bgl_services_set_tasks(w.mgr, tasks));
    OK(bgl_services_set_tasks(second, tasks));
    OK(bgl_services_set_keepalive(w.mgr, 1));
    OK(bgl_services_set_keepalive(second, 1));
    settle(&w);
    OK(bgl_task_finish(t, BGL_TASK_DONE, NULL));
    settle(&w);
    /* Both managers saw "nothing left" and dropped their holds. */
    EXPECT_RC(bgl_loop_release(w.loop), -EALREADY);

    OK(bgl_task_new(tasks, "c", "u", NULL, NULL, &t));
    settle(&w);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_tasks_free(tasks));   /* both stop counting it */
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    OK(bgl_services_free(second));
    settle(&w);
    OK(bgl_services_set_keepalive(w.mgr, 0));
    world_free(&w);
}
