/* test_service_stop.c - owner stops with a deadline (bgl_services_stop_full())
 * and their done callbacks, a run's registry entries wound up when it ends,
 * abandoned entries, stop timeout 0, removal, failed for good, keep-alive
 * exit codes and the texts of bgl_service_add() refusals. */
#include "lifecycle-harness.h"

TestSuite(service_stop, .timeout = BGL_TEST_TIMEOUT);

typedef struct done_log {
    int calls;
    char owner[32];
    bgl_services *mgr;
    int active_then;          /* bgl_services_active(mgr, owner) in the call */
} done_log;

static void on_done(bgl_services *mgr, const char *owner, void *ud)
{
    done_log *d = ud;
    d->calls++;
    d->mgr = mgr;
    snprintf(d->owner, sizeof d->owner, "%s", owner ? owner : "(all)");
    d->active_then = bgl_services_active(mgr, owner);
}

static fake_svc *running(world *w, const char *name, const char *owner)
{
    fake_svc *f = add_full(w, name, owner, NULL, NULL);
    f->ready_on_start = 1;
    OK(bgl_service_start(f->svc));
    settle(w);
    EXPECT_STATE(f, BGL_SERVICE_RUNNING);
    return f;
}

static void ignore_cancel(bgl_task *task, void *ud)
{
    (void)task;
    (*(int *)ud)++;
}

/* ---- owner stops ------------------------------------------------------------ */

Test(service_stop, stop_full_deadline_cancels_then_done_fires_once)
{
    world w;
    world_init(&w);
    fake_svc *a = running(&w, "a", "addon");
    fake_svc *b = running(&w, "b", "other");
    a->exit_on_stop = 0;   /* ignores the graceful request */
    EXPECT_LOG(&w, "start:a start:b");
    done_log d = {0};
    OK(bgl_services_stop_full(w.mgr, "addon", 1 * SEC, on_done, &d));
    settle(&w);
    EXPECT_LOG(&w, "stop:a");
    EXPECT_STATE(a, BGL_SERVICE_STOPPING);
    cr_assert_eq(d.calls, 0);
    advance(&w, 999 * MS);
    EXPECT_LOG(&w, "");
    advance(&w, 1 * MS);   /* the caller's deadline, well before a's 5 s */
    EXPECT_LOG(&w, "cancel:a");
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(a->svc), "stop timed out after 1 s, cancelled");
    bgl_service_info info;
    OK(bgl_service_get_info(a->svc, &info));
    cr_assert_eq(info.stop_timed_out, 1);
    cr_assert_eq(d.calls, 1);
    cr_assert_str_eq(d.owner, "addon");
    cr_assert_eq(d.mgr, w.mgr);
    EXPECT_RC(d.active_then, 0);
    EXPECT_STATE(b, BGL_SERVICE_RUNNING);
    advance(&w, 60 * SEC);
    cr_assert_eq(d.calls, 1);
    world_free(&w);
}

Test(service_stop, stop_full_deadline_then_abandon_one_stop_timeout_later)
{
    world w;
    world_init(&w);
    fake_svc *a = running(&w, "a", "addon");
    a->exit_on_stop = a->exit_on_cancel = 0;
    done_log d = {0};
    OK(bgl_services_stop_full(w.mgr, "addon", 0, on_done, &d));
    settle(&w);
    EXPECT_LOG(&w, "start:a stop:a cancel:a");
    EXPECT_STATE(a, BGL_SERVICE_STOPPING);
    advance(&w, 4 * SEC);
    cr_assert_eq(d.calls, 0);
    advance(&w, 1 * SEC);   /* its own stop timeout after the cancel */
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    cr_assert(strstr(bgl_service_error(a->svc), "abandoned"), "%s", bgl_service_error(a->svc));
    cr_assert_eq(d.calls, 1);
    world_free(&w);
}

/* A service whose stop waits for a dependent of another owner when the
 * deadline passes is cancelled as soon as its stop begins. */
Test(service_stop, stop_full_deadline_reaches_a_stop_that_has_not_begun)
{
    world w;
    world_init(&w);
    fake_svc *a = add_full(&w, "a", "addon", NULL, NULL);
    fake_svc *b = add_full(&w, "b", "other", DEPS("a"), NULL);
    a->ready_on_start = b->ready_on_start = 1;
    a->exit_on_stop = 0;
    b->exit_on_stop = 0;   /* b takes its own 5 s stop timeout */
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b");
    done_log d = {0};
    OK(bgl_services_stop_full(w.mgr, "addon", 1 * SEC, on_done, &d));
    settle(&w);
    EXPECT_LOG(&w, "stop:b");
    advance(&w, 1 * SEC);
    EXPECT_LOG(&w, "");      /* b is not the owner's: its own timeout holds */
    EXPECT_STATE(a, BGL_SERVICE_RUNNING);
    advance(&w, 4 * SEC);
    EXPECT_LOG(&w, "cancel:b stop:a cancel:a");
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(a->svc), "stop timed out after 1 s, cancelled");
    EXPECT_STATE(b, BGL_SERVICE_FAILED);
    cr_assert_eq(d.calls, 1);
    world_free(&w);
}

Test(service_stop, stop_full_done_is_never_called_from_inside_the_call)
{
    world w;
    world_init(&w);
    done_log d1 = {0}, d2 = {0}, d3 = {0};
    /* Nothing to stop at all: still called from the loop, later. */
    OK(bgl_services_stop_full(w.mgr, "nobody", -1, on_done, &d1));
    cr_assert_eq(d1.calls, 0);
    settle(&w);
    cr_assert_eq(d1.calls, 1);
    cr_assert_str_eq(d1.owner, "nobody");

    /* Several stops in progress at once: each gets its own call. */
    fake_svc *a = running(&w, "a", "addon");
    OK(bgl_services_stop_full(w.mgr, "addon", -1, on_done, &d2));
    OK(bgl_services_stop_full(w.mgr, NULL, 5 * SEC, on_done, &d3));
    cr_assert_eq(d2.calls + d3.calls, 0);
    settle(&w);
    EXPECT_STATE(a, BGL_SERVICE_STOPPED);
    cr_assert_eq(d2.calls, 1);
    cr_assert_eq(d3.calls, 1);
    cr_assert_str_eq(d3.owner, "(all)");
    advance(&w, 10 * SEC);
    cr_assert_eq(d1.calls + d2.calls + d3.calls, 3);
    world_free(&w);
}

Test(service_stop, stop_full_abandons_leftover_tasks_which_are_not_counted)
{
    world w;
    world_init(&w);
    bgl_tasks *reg = NULL;
    OK(bgl_tasks_new(&reg));
    OK(bgl_services_set_tasks(w.mgr, reg));
    running(&w, "a", "addon");
    int asked = 0;
    bgl_task *job = NULL, *mine = NULL, *quick = NULL;
    OK(bgl_task_new(reg, "addon", "job", ignore_cancel, &asked, &job));
    OK(bgl_task_new(reg, "addon", "quick", NULL, NULL, &quick));
    OK(bgl_task_new(reg, "other", "mine", ignore_cancel, &asked, &mine));
    done_log d = {0};
    OK(bgl_services_stop_full(w.mgr, "addon", 2 * SEC, on_done, &d));
    settle(&w);
    cr_assert_eq(asked, 1);   /* job only: "other" is not the owner stopped */
    EXPECT_RC(bgl_task_get_state(quick), BGL_TASK_CANCELLED);
    EXPECT_RC(bgl_services_active(w.mgr, "addon"), 1);   /* job, awaited */
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    cr_assert_eq(d.calls, 0);
    advance(&w, 2 * SEC);
    cr_assert_eq(d.calls, 1);
    EXPECT_RC(bgl_task_is_abandoned(job), 1);
    EXPECT_RC(bgl_task_get_state(job), BGL_TASK_PENDING);
    EXPECT_RC(bgl_services_active(w.mgr, "addon"), 0);
    EXPECT_RC(bgl_tasks_active(reg, "addon"), 0);
    bgl_task_counts c;
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.abandoned, 1);
    cr_assert_eq(c.pending, 2);
    /* Only "mine" is left, and only until it ends. */
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_task_finish(mine, BGL_TASK_DONE, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    OK(bgl_task_finish(job, BGL_TASK_CANCELLED, NULL));   /* late: fine */
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.abandoned, 0);

    /* Without a caller's deadline: the longest stop timeout (5 s). */
    OK(bgl_task_new(reg, "addon", "job2", ignore_cancel, &asked, &job));
    OK(bgl_services_stop_full(w.mgr, "addon", -1, on_done, &d));
    settle(&w);
    cr_assert_eq(asked, 2);
    advance(&w, 4 * SEC);
    cr_assert_eq(d.calls, 1);
    advance(&w, 1 * SEC);
    cr_assert_eq(d.calls, 2);
    EXPECT_RC(bgl_task_is_abandoned(job), 1);
    OK(bgl_services_set_tasks(w.mgr, NULL));
    OK(bgl_tasks_free(reg));
    world_free(&w);
}

/* ---- a run's own tasks --------------------------------------------------------- */

static int close_log(bgl_resource *res, void *object)
{
    (void)res;
    (*(int *)object)++;
    return 0;
}

Test(service_stop, ending_run_cancels_its_tasks_before_closing_resources)
{
    world w;
    world_init(&w);
    bgl_tasks *reg = NULL;
    OK(bgl_tasks_new(&reg));
    OK(bgl_services_set_tasks(w.mgr, reg));
    fake_svc *a = running(&w, "a", "addon");
    int closed = 0, asked = 0;
    OK(bgl_resource_push(bgl_service_resources(a->svc), "sock", &closed, close_log, NULL, NULL));
    bgl_task *t = NULL, *other = NULL;
    OK(bgl_task_new(reg, "addon", "a", ignore_cancel, &asked, &t));
    OK(bgl_task_new(reg, "addon", "b", ignore_cancel, &asked, &other));
    OK(bgl_service_exited(a->svc, 0, NULL));
    cr_assert_eq(asked, 1);   /* its own entry only */
    EXPECT_STATE(a, BGL_SERVICE_STOPPING);
    cr_assert_eq(closed, 0);  /* resources wait for the task */
    settle(&w);
    EXPECT_STATE(a, BGL_SERVICE_STOPPING);
    EXPECT_RC(bgl_services_active(w.mgr, "addon"), 1);
    OK(bgl_task_finish(t, BGL_TASK_CANCELLED, NULL));
    settle(&w);
    cr_assert_eq(closed, 1);
    EXPECT_STATE(a, BGL_SERVICE_EXITED);
    EXPECT_RC(bgl_task_get_state(other), BGL_TASK_PENDING);

    /* A task that ignores the cancel is abandoned after the stop timeout. */
    a->ready_on_start = 1;
    OK(bgl_service_start(a->svc));
    settle(&w);
    OK(bgl_task_new(reg, "addon", "a", ignore_cancel, &asked, &t));
    OK(bgl_service_exited(a->svc, 1, "crash"));
    advance(&w, 4 * SEC);
    EXPECT_STATE(a, BGL_SERVICE_STOPPING);
    advance(&w, 1 * SEC);
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    cr_assert_str_eq(bgl_service_error(a->svc), "crash");
    bgl_service_info info;
    OK(bgl_service_get_info(a->svc, &info));
    cr_assert_eq(info.tasks_abandoned, 1);
    EXPECT_RC(bgl_task_is_abandoned(t), 1);
    OK(bgl_task_finish(other, BGL_TASK_DONE, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    OK(bgl_tasks_free(reg));   /* detaches itself */
    world_free(&w);
}

/* ---- stop timeout 0 ---------------------------------------------------------------- */

Test(service_stop, stop_timeout_zero_cancels_at_once_and_stops_cleanly)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.stop_timeout_ns = 0;
    fake_svc *a = add_full(&w, "a", "addon", NULL, &cfg);
    fake_svc *b = add_full(&w, "b", "addon", NULL, &cfg);
    a->ready_on_start = b->ready_on_start = 1;
    a->exit_on_stop = b->exit_on_stop = 0;
    b->exit_on_cancel = 0;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b stop:a cancel:a stop:b cancel:b");
    EXPECT_STATE(a, BGL_SERVICE_STOPPED);   /* the cancel was the stop */
    bgl_service_info info;
    OK(bgl_service_get_info(a->svc, &info));
    cr_assert_eq(info.stop_timed_out, 0);
    cr_assert_null(info.error);
    /* b does not react: abandoned after the 1 s grace, not at once. */
    advance(&w, 999 * MS);
    EXPECT_STATE(b, BGL_SERVICE_STOPPING);
    advance(&w, 1 * MS);
    EXPECT_STATE(b, BGL_SERVICE_FAILED);
    cr_assert(strstr(bgl_service_error(b->svc), "abandoned"), "%s", bgl_service_error(b->svc));
    world_free(&w);
}

/* ---- removal ---------------------------------------------------------------------- */

Test(service_stop, services_remove_is_all_or_nothing_and_names_the_busy)
{
    world w;
    world_init(&w);
    fake_svc *a = running(&w, "a", "addon");
    add_full(&w, "idle", "addon", NULL, NULL);
    fake_svc *c = running(&w, "c", "addon");
    fake_svc *o = add_full(&w, "o", "other", NULL, NULL);
    EXPECT_RC(bgl_services_remove(w.mgr, "addon"), -EBUSY);
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "still active or wanted: a, c");
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 0), 4);
    EXPECT_RC(bgl_service_remove(a->svc), -EBUSY);
    cr_assert_str_eq(bgl_services_last_error(w.mgr),
                     "service 'a' is still active or wanted; stop it first");
    OK(bgl_services_stop(w.mgr, "addon"));
    settle(&w);
    EXPECT_STATE(c, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_remove(w.mgr, "addon"), 3);
    cr_assert_eq(a->destroyed + w.svcs[1].destroyed + c->destroyed, 3);
    EXPECT_RC(bgl_services_remove(w.mgr, "addon"), 0);
    bgl_service *found;
    EXPECT_RC(bgl_services_find(w.mgr, "a", &found), -ENOENT);
    OK(bgl_services_find(w.mgr, "o", &found));
    EXPECT_RC(bgl_services_remove(w.mgr, NULL), 1);
    cr_assert_eq(o->destroyed, 1);
    world_free(&w);
}

/* ---- failed for good ------------------------------------------------------------------ */

Test(service_stop, failed_for_good_is_the_exit_code_rule)
{
    world w;
    world_init(&w);
    bgl_service_config retry;
    bgl_service_config_init(&retry);
    retry.restart = BGL_RESTART_ON_FAILURE;
    retry.restart_delay_ns = 1 * SEC;
    fake_svc *db = add(&w, "db", NULL);
    fake_svc *r = add_full(&w, "r", "addon", NULL, &retry);
    db->ready_on_start = r->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    bgl_service *out[4];
    EXPECT_RC(bgl_services_list_failed(w.mgr, out, 4), 0);
    OK(bgl_service_exited(r->svc, 1, "crash"));   /* restart pending */
    settle(&w);
    bgl_service_info info;
    OK(bgl_service_get_info(r->svc, &info));
    cr_assert_eq(info.state, BGL_SERVICE_FAILED);
    cr_assert_eq(info.failed_for_good, 0);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 0);
    OK(bgl_service_exited(db->svc, 1, "boom"));     /* restart = no */
    settle(&w);
    OK(bgl_service_get_info(db->svc, &info));
    cr_assert_eq(info.failed_for_good, 1);
    EXPECT_RC(bgl_services_exit_code(w.mgr), 1);
    EXPECT_RC(bgl_services_list_failed(w.mgr, out, 4), 1);
    cr_assert_eq(out[0], db->svc);
    EXPECT_RC(bgl_services_list_failed(w.mgr, NULL, 0), 1);
    world_free(&w);
}

/* ---- keep-alive ------------------------------------------------------------------------ */

Test(service_stop, keepalive_on_an_empty_manager_stops_the_loop_with_0)
{
    world w;
    world_init(&w);
    OK(bgl_services_set_keepalive(w.mgr, 1));
    EXPECT_RC(bgl_loop_run(w.loop), 0);
    world_free(&w);
}

Test(service_stop, keepalive_stops_the_loop_with_the_exit_code)
{
    world w;
    world_init(&w);
    fake_svc *a = running(&w, "a", "addon");
    OK(bgl_services_set_keepalive(w.mgr, 1));
    settle(&w);
    OK(bgl_service_exited(a->svc, 1, "boom"));
    settle(&w);
    /* The stop was requested between iterations: run() returns it at once. */
    EXPECT_RC(bgl_loop_run(w.loop), 1);
    OK(bgl_services_set_keepalive(w.mgr, 0));
    world_free(&w);
}

Test(service_stop, keepalive_ends_although_a_task_swallows_cancellation)
{
    world w;
    world_init(&w);
    bgl_tasks *reg = NULL;
    OK(bgl_tasks_new(&reg));
    OK(bgl_services_set_tasks(w.mgr, reg));
    running(&w, "a", "addon");
    int asked = 0;
    bgl_task *t = NULL;
    OK(bgl_task_new(reg, "addon", "stubborn", ignore_cancel, &asked, &t));
    OK(bgl_services_set_keepalive(w.mgr, 1));
    settle(&w);
    OK(bgl_services_stop_full(w.mgr, NULL, 1 * SEC, NULL, NULL));
    settle(&w);
    cr_assert_eq(asked, 1);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    advance(&w, 1 * SEC);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    EXPECT_RC(bgl_loop_run(w.loop), 0);
    OK(bgl_services_set_keepalive(w.mgr, 0));
    OK(bgl_services_set_tasks(w.mgr, NULL));
    OK(bgl_tasks_free(reg));
    world_free(&w);
}

/* ---- validation texts --------------------------------------------------------------------- */

static int start_nop(bgl_service *svc, void *ud)
{
    (void)svc, (void)ud;
    return 0;
}

#define EXPECT_REFUSED(w, cfg, hooks, rc, text)                                        \
    do {                                                                               \
        EXPECT_RC(bgl_service_add((w)->mgr, (cfg), (hooks), NULL, NULL), (rc));        \
        cr_assert_str_eq(bgl_services_last_error((w)->mgr), (text));                   \
    } while (0)

Test(service_stop, service_add_refusals_name_the_service_and_field)
{
    world w;
    world_init(&w);
    const bgl_service_hooks hooks = {.start = start_nop}, none = {0};
    bgl_service_config ok, c;
    bgl_service_config_init(&ok);
    ok.name = "web";
    ok.owner = "addon";
    cr_assert_eq(ok.close_timeout_ns, BGL_CLOSE_TIMEOUT_AUTO);
    OK(bgl_service_add(w.mgr, &ok, &hooks, NULL, NULL));
    EXPECT_REFUSED(&w, &ok, &hooks, -EEXIST, "a service named 'web' is already registered");
    ok.name = "api";
    EXPECT_REFUSED(&w, NULL, &hooks, -EINVAL, "bgl_service_add: no configuration (cfg is NULL)");
    EXPECT_REFUSED(&w, &ok, NULL, -EINVAL, "service 'api': no start hook");
    EXPECT_REFUSED(&w, &ok, &none, -EINVAL, "service 'api': no start hook");
    c = ok, c.name = "";
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL, "a service needs a non-empty name");
    c = ok, c.owner = NULL;
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL, "service 'api': owner is missing or empty");
    c = ok, c.restart = (bgl_restart_policy)7;
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL, "service 'api': unknown restart policy 7");
    c = ok, c.restart_delay_ns = 2 * SEC, c.restart_delay_max_ns = 1 * SEC;
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL,
                   "service 'api': restart_delay_max (1 s) is below restart_delay (2 s)");
    c = ok, c.start_limit_interval_ns = 0;
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL,
                   "service 'api': start_limit_burst 5 needs a start_limit_interval above 0");
    c = ok, c.depends_on = DEPS("db", "api");
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL, "service 'api': depends on itself");
    c = ok, c.depends_on = DEPS("db", "");
    EXPECT_REFUSED(&w, &c, &hooks, -EINVAL, "service 'api': dependency 1 has an empty name");
    c = ok, c.stop_timeout_ns = UINT64_MAX;
    EXPECT_RC(bgl_service_add(w.mgr, &c, &hooks, NULL, NULL), -EINVAL);
    cr_assert(strstr(bgl_services_last_error(w.mgr), "service 'api': stop_timeout"), "%s",
              bgl_services_last_error(w.mgr));
    c = ok, c.close_timeout_ns = UINT64_MAX - 1;
    EXPECT_RC(bgl_service_add(w.mgr, &c, &hooks, NULL, NULL), -EINVAL);
    cr_assert(strstr(bgl_services_last_error(w.mgr), "service 'api': close_timeout"), "%s",
              bgl_services_last_error(w.mgr));
    EXPECT_RC(bgl_services_list(w.mgr, NULL, NULL, 0), 1);
    c = ok, c.stop_timeout_ns = 0;   /* valid: cancel at once */
    OK(bgl_service_add(w.mgr, &c, &hooks, NULL, NULL));
    cr_assert_str_eq(bgl_services_last_error(w.mgr), "");
    world_free(&w);
}

/* ---- how long a stop can take, what it gave up on ------------------------- */

/* A stop completes within bgl_services_stop_bound() whatever the services
 * do: here a dependent of another owner and the owner's service ignore both
 * the stop and the cancel, and a task of each ignores its cancellation. */
static void check_bound(int64_t timeout_ns)
{
    world w;
    world_init(&w);
    bgl_tasks *reg = NULL;
    OK(bgl_tasks_new(&reg));
    OK(bgl_services_set_tasks(w.mgr, reg));
    fake_svc *a = add_full(&w, "a", "addon", NULL, NULL);
    fake_svc *b = add_full(&w, "b", "other", DEPS("a"), NULL);
    a->ready_on_start = b->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    a->exit_on_stop = a->exit_on_cancel = b->exit_on_stop = b->exit_on_cancel = 0;
    int asked = 0;
    bgl_task *ta = NULL, *tb = NULL, *left = NULL;
    OK(bgl_task_new(reg, "addon", "a", ignore_cancel, &asked, &ta));
    OK(bgl_task_new(reg, "other", "b", ignore_cancel, &asked, &tb));
    OK(bgl_task_new(reg, "addon", "left", ignore_cancel, &asked, &left));
    uint64_t bound = 0;
    OK(bgl_services_stop_bound(w.mgr, "addon", timeout_ns, &bound));
    cr_assert_geq(bound, 10 * SEC, "%llu", (unsigned long long)bound);
    done_log d = {0};
    OK(bgl_services_stop_full(w.mgr, "addon", timeout_ns, on_done, &d));
    uint64_t spent = 0;
    while (d.calls == 0 && spent < bound) {
        advance(&w, 100 * MS);
        spent += 100 * MS;
    }
    cr_assert_eq(d.calls, 1, "not done within the bound of %g s", (double)bound / 1e9);
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    EXPECT_STATE(b, BGL_SERVICE_FAILED);
    /* Each service and each ignored task was given up on. */
    EXPECT_RC(bgl_services_abandoned(w.mgr, "addon"), 3);
    EXPECT_RC(bgl_services_abandoned(w.mgr, "other"), 2);
    EXPECT_RC(bgl_services_abandoned(w.mgr, NULL), 5);
    bgl_service_info info;
    OK(bgl_service_get_info(a->svc, &info));
    cr_assert_eq(info.abandoned, 1);
    OK(bgl_task_finish(left, BGL_TASK_CANCELLED, NULL));   /* no longer out there */
    EXPECT_RC(bgl_services_abandoned(w.mgr, "addon"), 2);
    world_free(&w);
    OK(bgl_tasks_free(reg));
}

Test(service_stop, stop_bound_holds_when_nothing_cooperates)
{
    check_bound(-1);
}

Test(service_stop, stop_bound_holds_with_a_deadline)
{
    check_bound(0);
    check_bound(2 * SEC);
}

Test(service_stop, stop_bound_counts_timeouts_of_services_up_only)
{
    world w;
    world_init(&w);
    uint64_t idle = 0, up = 0, deadline = 0;
    fake_svc *a = add_full(&w, "a", "addon", NULL, NULL);
    a->ready_on_start = 1;
    /* Nothing up: the wait for leftover tasks and the close (5 s each). */
    OK(bgl_services_stop_bound(w.mgr, "addon", -1, &idle));
    cr_assert_eq(idle, 10 * SEC);
    OK(bgl_service_start(a->svc));
    settle(&w);
    /* + stop timeout, cancel grace, task grace and close of a (5 s each) */
    OK(bgl_services_stop_bound(w.mgr, "addon", -1, &up));
    cr_assert_eq(up, idle + 20 * SEC);
    OK(bgl_services_stop_bound(w.mgr, "addon", 1 * SEC, &deadline));
    cr_assert_eq(deadline, 1 * SEC + 15 * SEC + 1 * SEC + 5 * SEC);
    EXPECT_RC(bgl_services_stop_bound(NULL, "addon", -1, &up), -EINVAL);
    EXPECT_RC(bgl_services_stop_bound(w.mgr, "", -1, &up), -EINVAL);
    EXPECT_RC(bgl_services_stop_bound(w.mgr, NULL, -1, NULL), -EINVAL);
    world_free(&w);
}

Test(service_stop, abandoned_is_reset_by_a_stop_that_ends_well)
{
    world w;
    world_init(&w);
    fake_svc *a = running(&w, "a", "addon");
    a->exit_on_stop = a->exit_on_cancel = 0;
    OK(bgl_services_stop(w.mgr, "addon"));
    settle(&w);
    advance(&w, 5 * SEC);   /* stop timeout: cancelled */
    advance(&w, 5 * SEC);   /* one more: abandoned */
    EXPECT_STATE(a, BGL_SERVICE_FAILED);
    EXPECT_RC(bgl_services_abandoned(w.mgr, "addon"), 1);
    EXPECT_RC(bgl_services_abandoned(w.mgr, "other"), 0);
    a->exit_on_stop = 1;
    OK(bgl_service_start(a->svc));
    settle(&w);
    EXPECT_RC(bgl_services_abandoned(w.mgr, "addon"), 1);   /* its last stop's */
    OK(bgl_services_stop(w.mgr, "addon"));
    settle(&w);
    EXPECT_STATE(a, BGL_SERVICE_STOPPED);
    EXPECT_RC(bgl_services_abandoned(w.mgr, "addon"), 0);
    EXPECT_RC(bgl_services_abandoned(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_services_abandoned(w.mgr, ""), -EINVAL);
    world_free(&w);
}
