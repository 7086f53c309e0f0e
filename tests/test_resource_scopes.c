/* test_resource_scopes.c - resource stacks scoped to a service, an owner and
 * the manager: when they close, and how that orders with service stops. */
#include "lifecycle-harness.h"

TestSuite(resource_scopes, .timeout = BGL_TEST_TIMEOUT);

typedef struct res_obj {
    world *w;
    char name[16];
    int async;
    bgl_resource *token;
    int released;
} res_obj;

static int res_close(bgl_resource *res, void *object)
{
    res_obj *o = object;
    wlog(o->w, "close", o->name);
    if (o->async) {
        o->token = res;
        return BGL_RESOURCE_ASYNC;
    }
    return 0;
}

static void res_release(void *object)
{
    ((res_obj *)object)->released++;
}

static void push(bgl_resources *rs, res_obj *o, world *w, const char *name, int async)
{
    memset(o, 0, sizeof *o);
    o->w = w;
    o->async = async;
    snprintf(o->name, sizeof o->name, "%s", name);
    OK(bgl_resource_push(rs, name, o, res_close, res_release, NULL));
}

Test(resource_scopes, resource_of_service_closes_however_it_ends)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.restart = BGL_RESTART_ON_FAILURE;
    cfg.restart_delay_ns = cfg.restart_delay_max_ns = 1 * SEC;
    fake_svc *f = add_full(&w, "srv", "addon", NULL, &cfg);
    f->ready_on_start = 1;
    res_obj o[6];
    OK(bgl_service_start(f->svc));
    settle(&w);
    /* Ends by failure: closed LIFO, then restarted. */
    push(bgl_service_resources(f->svc), &o[0], &w, "socket", 0);
    push(bgl_service_resources(f->svc), &o[1], &w, "server", 0);
    OK(bgl_service_exited(f->svc, 1, "crash"));
    EXPECT_LOG(&w, "start:srv close:server close:socket");
    cr_assert(o[0].released == 1 && o[1].released == 1);
    advance(&w, 1 * SEC);
    EXPECT_LOG(&w, "start:srv");
    /* Ends by a clean exit. */
    push(bgl_service_resources(f->svc), &o[2], &w, "file", 0);
    OK(bgl_service_exited(f->svc, 0, NULL));
    EXPECT_LOG(&w, "close:file");
    /* Ends by a start hook error. */
    f->start_rc = -EACCES;
    f->ready_on_start = 0;
    push(bgl_service_resources(f->svc), &o[3], &w, "early", 0);
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_LOG(&w, "start:srv close:early");
    EXPECT_STATE(f, BGL_SERVICE_FAILED);
    /* Ends by a stop. */
    f->start_rc = 0;
    f->ready_on_start = 1;
    OK(bgl_service_stop(f->svc));
    settle(&w);
    OK(bgl_service_start(f->svc));
    settle(&w);
    EXPECT_LOG(&w, "start:srv");
    push(bgl_service_resources(f->svc), &o[4], &w, "conn", 0);
    OK(bgl_service_stop(f->svc));
    settle(&w);
    EXPECT_LOG(&w, "stop:srv close:conn");
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);
    world_free(&w);
}

Test(resource_scopes, resource_async_close_keeps_service_stopping_and_its_dependency_up)
{
    world w;
    world_init(&w);
    fake_svc *db = add(&w, "db", NULL);
    fake_svc *api = add(&w, "api", DEPS("db"));
    db->ready_on_start = api->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    res_obj conn;
    push(bgl_service_resources(api->svc), &conn, &w, "db-conn", 1);
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:db start:api stop:api close:db-conn");
    EXPECT_STATE(api, BGL_SERVICE_STOPPING);
    EXPECT_STATE(db, BGL_SERVICE_RUNNING);   /* still needed by api's close */
    advance(&w, 1 * SEC);
    EXPECT_LOG(&w, "");
    OK(bgl_resource_done(conn.token, 0, NULL));
    EXPECT_STATE(api, BGL_SERVICE_STOPPED);
    settle(&w);
    EXPECT_LOG(&w, "stop:db");
    cr_assert_eq(conn.released, 1);
    world_free(&w);
}

Test(resource_scopes, resource_close_of_service_is_bounded_by_its_timeout)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.close_timeout_ns = 3 * SEC;
    fake_svc *f = add_full(&w, "a", "addon", NULL, &cfg);
    f->ready_on_start = 1;
    OK(bgl_service_start(f->svc));
    settle(&w);
    res_obj hung, fine;
    push(bgl_service_resources(f->svc), &fine, &w, "fine", 0);
    push(bgl_service_resources(f->svc), &hung, &w, "hung", 1);
    OK(bgl_service_exited(f->svc, 0, NULL));
    EXPECT_STATE(f, BGL_SERVICE_STOPPING);
    advance(&w, 3 * SEC);
    EXPECT_STATE(f, BGL_SERVICE_EXITED);
    EXPECT_LOG(&w, "start:a close:hung close:fine");
    bgl_resources_report rep;
    OK(bgl_resources_get_report(bgl_service_resources(f->svc), &rep));
    cr_assert(rep.closed == 1 && rep.timed_out == 1);
    cr_assert_str_eq(rep.errors, "'hung': close timed out");
    EXPECT_RC(bgl_resource_done(hung.token, 0, NULL), -ETIMEDOUT);
    cr_assert_eq(hung.released, 1);
    world_free(&w);
}

Test(resource_scopes, resource_of_owner_closes_after_its_services_stopped)
{
    world w;
    world_init(&w);
    fake_svc *a = add_full(&w, "a", "addon_a", NULL, NULL);
    fake_svc *b = add_full(&w, "b", "addon_b", NULL, NULL);
    a->ready_on_start = b->ready_on_start = 1;
    a->exit_on_stop = 0;
    bgl_resources *ra = NULL, *rb = NULL, *again = NULL;
    OK(bgl_services_owner_resources(w.mgr, "addon_a", &ra));
    OK(bgl_services_owner_resources(w.mgr, "addon_a", &again));
    cr_assert_eq(ra, again);
    OK(bgl_services_owner_resources(w.mgr, "addon_b", &rb));
    res_obj oa, ob, om;
    push(ra, &oa, &w, "a-cache", 0);
    push(rb, &ob, &w, "b-cache", 0);
    push(bgl_services_loop_resources(w.mgr), &om, &w, "global", 0);
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "start:a start:b");

    OK(bgl_services_stop(w.mgr, "addon_a"));
    settle(&w);
    EXPECT_LOG(&w, "stop:a");   /* a has not ended: its owner's stack waits */
    EXPECT_RC(bgl_services_active(w.mgr, "addon_a"), 2);   /* a + pending close */
    OK(bgl_service_exited(a->svc, 0, NULL));
    settle(&w);
    EXPECT_LOG(&w, "close:a-cache");
    EXPECT_RC(bgl_services_active(w.mgr, "addon_a"), 0);
    EXPECT_STATE(b, BGL_SERVICE_RUNNING);
    cr_assert_eq(ob.released, 0);
    cr_assert_eq(om.released, 0);

    /* Stopping everything closes the remaining owner stacks, then the
     * manager's. */
    OK(bgl_services_stop(w.mgr, NULL));
    settle(&w);
    EXPECT_LOG(&w, "stop:b close:b-cache close:global");
    world_free(&w);
}

/* "Bounded by the largest close_timeout_ns of the services concerned": when
 * that is 0 (do not wait), an asynchronous close of the owner's stack is not
 * waited for either - not for the 5 s meant for owners without services. */
Test(resource_scopes, resource_of_owner_uses_a_zero_close_timeout_of_its_services)
{
    world w;
    world_init(&w);
    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.close_timeout_ns = 0;
    fake_svc *a = add_full(&w, "a", "addon_a", NULL, &cfg);
    a->ready_on_start = 1;
    bgl_resources *ra = NULL;
    OK(bgl_services_owner_resources(w.mgr, "addon_a", &ra));
    res_obj o;
    push(ra, &o, &w, "slow", 1);
    OK(bgl_services_start(w.mgr, "addon_a"));
    settle(&w);
    OK(bgl_services_stop(w.mgr, "addon_a"));
    settle(&w);   /* the fake clock does not move */
    EXPECT_LOG(&w, "start:a stop:a close:slow");
    EXPECT_RC(bgl_resources_is_closing(ra), 0);
    bgl_resources_report rep;
    OK(bgl_resources_get_report(ra, &rep));
    cr_assert_eq(rep.timed_out, 1);
    EXPECT_RC(bgl_services_active(w.mgr, "addon_a"), 0);
    EXPECT_RC(bgl_resource_done(o.token, 0, NULL), -ETIMEDOUT);   /* late */
    world_free(&w);
}

Test(resource_scopes, resource_owned_stacks_cannot_be_freed_directly)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "a", NULL);
    bgl_resources *ro = NULL;
    OK(bgl_services_owner_resources(w.mgr, "addon", &ro));
    EXPECT_RC(bgl_resources_free(bgl_service_resources(f->svc)), -EINVAL);
    EXPECT_RC(bgl_resources_free(bgl_services_loop_resources(w.mgr)), -EINVAL);
    EXPECT_RC(bgl_resources_free(ro), -EINVAL);
    EXPECT_RC(bgl_services_owner_resources(NULL, "x", &ro), -EINVAL);
    EXPECT_RC(bgl_services_owner_resources(w.mgr, NULL, &ro), -EINVAL);
    EXPECT_RC(bgl_services_owner_resources(w.mgr, "", &ro), -EINVAL);
    EXPECT_RC(bgl_services_owner_resources(w.mgr, "x", NULL), -EINVAL);
    cr_assert_null(bgl_services_loop_resources(NULL));
    cr_assert_null(bgl_service_resources(NULL));
    /* The manager refuses to go while a stack holds entries. */
    res_obj o;
    push(ro, &o, &w, "left", 0);
    EXPECT_RC(bgl_services_free(w.mgr), -EBUSY);
    world_free(&w);   /* its stop closes the owner stack */
    cr_assert_eq(o.released, 1);
}

Test(resource_scopes, resource_pushed_to_an_idle_service_closes_next_iteration)
{
    world w;
    world_init(&w);
    fake_svc *f = add(&w, "idle", NULL);
    res_obj o;
    push(bgl_service_resources(f->svc), &o, &w, "stray", 1);
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    settle(&w);
    EXPECT_LOG(&w, "close:stray");
    /* Closing it counts as something left, so a keep-alive waits for it. */
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 0);
    OK(bgl_resource_done(o.token, 0, NULL));
    EXPECT_RC(bgl_services_nothing_left(w.mgr), 1);
    cr_assert_eq(o.released, 1);
    EXPECT_STATE(f, BGL_SERVICE_STOPPED);   /* no state change: it never ran */
    cr_assert_str_eq(w.transitions, "");
    world_free(&w);
}
