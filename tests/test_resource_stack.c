/* test_resource_stack.c - LIFO closing, failures, asynchronous completion,
 * the close timeout, idempotence, release, and bad input. */
#include "helpers.h"

#include <limits.h>

TestSuite(resource_stack, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000000)

enum { CLOSE_OK, CLOSE_FAIL, CLOSE_ASYNC, CLOSE_ASYNC_INLINE };

typedef struct obj {
    int id;
    int mode;
    bgl_resource *token;      /* set while an async close is outstanding */
    int released;
    recorder *closed;         /* ids in the order they were closed */
    bgl_resources *push_on_close;  /* push obj `extra` from inside close */
    struct obj *extra;
} obj;

static int obj_close(bgl_resource *res, void *object);

static void obj_release(void *object)
{
    ((obj *)object)->released++;
}

static int obj_close(bgl_resource *res, void *object)
{
    obj *o = object;
    rec_push(o->closed, o->id);
    if (o->push_on_close)
        OK(bgl_resource_push(o->push_on_close, "extra", o->extra, obj_close, obj_release, NULL));
    switch (o->mode) {
    case CLOSE_FAIL:
        return -EIO;
    case CLOSE_ASYNC:
        o->token = res;
        return BGL_RESOURCE_ASYNC;
    case CLOSE_ASYNC_INLINE:
        OK(bgl_resource_done(res, 0, NULL));
        return BGL_RESOURCE_ASYNC;
    default:
        return 0;
    }
}

typedef struct closed_cb_state {
    int calls;
    bgl_resources_report rep;
    char errors[512];
} closed_cb_state;

static void on_closed(bgl_resources *rs, const bgl_resources_report *rep, void *ud)
{
    (void)rs;
    closed_cb_state *s = ud;
    s->calls++;
    s->rep = *rep;
    snprintf(s->errors, sizeof s->errors, "%s", rep->errors ? rep->errors : "");
}

typedef struct fixture {
    bgl_loop *loop;
    fake_clock clk;
    bgl_resources *rs;
    recorder closed;
    closed_cb_state cb;
    obj objs[8];
} fixture;

static void fx_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->loop = new_loop();
    use_fake_clock(f->loop, &f->clk, T0);
    OK(bgl_resources_new(f->loop, &f->rs));
    OK(bgl_resources_set_closed_cb(f->rs, on_closed, &f->cb));
}

static obj *fx_push(fixture *f, int id, int mode)
{
    obj *o = &f->objs[id];
    o->id = id;
    o->mode = mode;
    o->closed = &f->closed;
    char name[16];
    snprintf(name, sizeof name, "r%d", id);
    OK(bgl_resource_push(f->rs, name, o, obj_close, obj_release, NULL));
    return o;
}

static void fx_run(fixture *f)
{
    for (int i = 0; i < 100 && bgl_loop_run_once(f->loop, 0) > 0; i++) {
    }
}

static void fx_free(fixture *f)
{
    OK(bgl_resources_free(f->rs));
    free_loop(f->loop);
}

Test(resource_stack, resource_close_runs_in_reverse_registration_order)
{
    fixture f;
    fx_init(&f);
    for (int i = 1; i <= 4; i++)
        fx_push(&f, i, CLOSE_OK);
    EXPECT_RC(bgl_resources_count(f.rs), 4);
    OK(bgl_resources_close(f.rs, 5 * SEC));
    EXPECT_SEQ(&f.closed, 4, 3, 2, 1);
    cr_assert_eq(f.cb.calls, 1);
    cr_assert(f.cb.rep.closed == 4 && f.cb.rep.failed == 0 && f.cb.rep.timed_out == 0);
    cr_assert_null(f.cb.rep.errors);
    for (int i = 1; i <= 4; i++)
        cr_assert_eq(f.objs[i].released, 1, "object %d released %d times", i,
                     f.objs[i].released);
    EXPECT_RC(bgl_resources_count(f.rs), 0);
    EXPECT_RC(bgl_resources_is_closing(f.rs), 0);
    fx_free(&f);
}

Test(resource_stack, resource_failing_close_is_reported_and_the_rest_still_close)
{
    fixture f;
    fx_init(&f);
    fx_push(&f, 1, CLOSE_OK);
    fx_push(&f, 2, CLOSE_FAIL);
    fx_push(&f, 3, CLOSE_OK);
    OK(bgl_resources_close(f.rs, 5 * SEC));
    EXPECT_SEQ(&f.closed, 3, 2, 1);
    cr_assert(f.cb.rep.closed == 2 && f.cb.rep.failed == 1);
    cr_assert_str_eq(f.cb.errors, "'r2': Input/output error");
    bgl_resources_report rep;
    OK(bgl_resources_get_report(f.rs, &rep));
    cr_assert_eq(rep.failed, 1);
    cr_assert_str_eq(rep.errors, "'r2': Input/output error");
    cr_assert_eq(f.objs[2].released, 1);
    fx_free(&f);
}

static int close_int_min(bgl_resource *res, void *object)
{
    (void)res, (void)object;
    return INT_MIN;
}

/* -INT_MIN does not exist: the error text must not come from negating it
 * (undefined behaviour; glibc then says "Unknown error -2147483648"). */
Test(resource_stack, resource_close_error_int_min_is_reported_as_unknown_error)
{
    fixture f;
    fx_init(&f);
    OK(bgl_resource_push(f.rs, "odd", NULL, close_int_min, NULL, NULL));
    OK(bgl_resources_close(f.rs, 5 * SEC));
    cr_assert(f.cb.rep.closed == 0 && f.cb.rep.failed == 1);
    cr_assert_str_eq(f.cb.errors, "'odd': Unknown error");
    fx_free(&f);
}

Test(resource_stack, resource_async_close_holds_back_the_next_entry)
{
    fixture f;
    fx_init(&f);
    fx_push(&f, 1, CLOSE_OK);
    obj *slow = fx_push(&f, 2, CLOSE_ASYNC);
    fx_push(&f, 3, CLOSE_ASYNC_INLINE);
    OK(bgl_resources_close(f.rs, 5 * SEC));
    EXPECT_SEQ(&f.closed, 3, 2);
    EXPECT_RC(bgl_resources_is_closing(f.rs), 1);
    EXPECT_RC(bgl_resources_count(f.rs), 2);
    cr_assert_eq(f.cb.calls, 0);
    EXPECT_RC(bgl_resources_close(f.rs, 5 * SEC), 0);   /* already closing: nothing */
    EXPECT_SEQ(&f.closed, 3, 2);
    cr_assert_str_eq(bgl_resource_name(slow->token), "r2");
    OK(bgl_resource_done(slow->token, -EPIPE, "peer went away"));
    EXPECT_SEQ(&f.closed, 3, 2, 1);
    cr_assert_eq(f.cb.calls, 1);
    cr_assert(f.cb.rep.closed == 2 && f.cb.rep.failed == 1);
    cr_assert_str_eq(f.cb.errors, "'r2': peer went away");
    fx_free(&f);
}

Test(resource_stack, resource_close_timeout_abandons_and_still_closes_the_rest)
{
    fixture f;
    fx_init(&f);
    fx_push(&f, 1, CLOSE_OK);
    obj *never2 = fx_push(&f, 2, CLOSE_ASYNC);
    obj *hung = fx_push(&f, 3, CLOSE_ASYNC);
    OK(bgl_resources_close(f.rs, 2 * SEC));
    EXPECT_SEQ(&f.closed, 3);
    f.clk.now += 2 * SEC - 1;
    fx_run(&f);
    EXPECT_SEQ(&f.closed, 3);
    f.clk.now += 1;
    fx_run(&f);
    /* 3 timed out; 2 was still asked to close but not waited for. */
    EXPECT_SEQ(&f.closed, 3, 2, 1);
    cr_assert_eq(f.cb.calls, 1);
    cr_assert(f.cb.rep.closed == 1 && f.cb.rep.failed == 0 && f.cb.rep.timed_out == 2);
    cr_assert_str_eq(f.cb.errors, "'r3': close timed out; 'r2': close timed out");
    EXPECT_RC(bgl_resources_is_closing(f.rs), 0);
    /* The stack can go; late completions free the abandoned entries. */
    fx_free(&f);
    cr_assert_eq(hung->released, 0);
    EXPECT_RC(bgl_resource_done(hung->token, 0, NULL), -ETIMEDOUT);
    cr_assert_eq(hung->released, 1);
    EXPECT_RC(bgl_resource_done(never2->token, -EIO, NULL), -ETIMEDOUT);
    cr_assert_eq(never2->released, 1);
}

Test(resource_stack, resource_zero_timeout_does_not_wait)
{
    fixture f;
    fx_init(&f);
    obj *a = fx_push(&f, 1, CLOSE_ASYNC);
    fx_push(&f, 2, CLOSE_ASYNC_INLINE);
    OK(bgl_resources_close(f.rs, 0));
    EXPECT_SEQ(&f.closed, 2, 1);
    cr_assert(f.cb.calls == 1 && f.cb.rep.closed == 1 && f.cb.rep.timed_out == 1);
    EXPECT_RC(bgl_resource_done(a->token, 0, NULL), -ETIMEDOUT);
    fx_free(&f);
}

Test(resource_stack, resource_close_is_idempotent_and_the_stack_reusable)
{
    fixture f;
    fx_init(&f);
    OK(bgl_resources_close(f.rs, -1));   /* empty: completes at once */
    cr_assert_eq(f.cb.calls, 1);
    fx_push(&f, 1, CLOSE_OK);
    OK(bgl_resources_close(f.rs, -1));
    OK(bgl_resources_close(f.rs, -1));
    EXPECT_SEQ(&f.closed, 1);
    cr_assert_eq(f.objs[1].released, 1);
    cr_assert_eq(f.cb.calls, 3);
    cr_assert_eq(f.cb.rep.closed, 0);   /* the last close had nothing to do */
    fx_push(&f, 5, CLOSE_OK);
    OK(bgl_resources_close(f.rs, -1));
    EXPECT_SEQ(&f.closed, 1, 5);
    fx_free(&f);
}

Test(resource_stack, resource_pushed_while_closing_is_closed_too)
{
    fixture f;
    fx_init(&f);
    obj *late = &f.objs[7];
    late->id = 7;
    late->closed = &f.closed;
    fx_push(&f, 1, CLOSE_OK);
    obj *o = fx_push(&f, 2, CLOSE_OK);
    o->push_on_close = f.rs;
    o->extra = late;
    OK(bgl_resources_close(f.rs, -1));
    EXPECT_SEQ(&f.closed, 2, 7, 1);
    cr_assert_eq(late->released, 1);
    fx_free(&f);
}

Test(resource_stack, resource_done_twice_or_too_early_is_refused)
{
    fixture f;
    fx_init(&f);
    bgl_resource *queued = NULL;
    f.objs[1] = (obj){.id = 1, .closed = &f.closed};
    OK(bgl_resource_push(f.rs, NULL, &f.objs[1], obj_close, NULL, &queued));
    EXPECT_RC(bgl_resource_done(queued, 0, NULL), -EALREADY);
    obj *a = fx_push(&f, 2, CLOSE_ASYNC);
    OK(bgl_resources_close(f.rs, -1));
    EXPECT_RC(bgl_resources_free(f.rs), -EBUSY);   /* closing */
    OK(bgl_resource_done(a->token, 0, NULL));
    cr_assert_eq(f.cb.calls, 1);
    EXPECT_SEQ(&f.closed, 2, 1);
    cr_assert_eq(f.cb.rep.errors, NULL);
    fx_free(&f);
}

Test(resource_stack, resource_bad_input_is_refused)
{
    fixture f;
    fx_init(&f);
    bgl_resources *rs = NULL;
    bgl_resources_report rep;
    EXPECT_RC(bgl_resources_new(NULL, &rs), -EINVAL);
    EXPECT_RC(bgl_resources_new(f.loop, NULL), -EINVAL);
    EXPECT_RC(bgl_resources_free(NULL), -EINVAL);
    EXPECT_RC(bgl_resource_push(NULL, "x", NULL, obj_close, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_resource_push(f.rs, "x", NULL, NULL, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_resource_done(NULL, 0, NULL), -EINVAL);
    EXPECT_RC(bgl_resources_close(NULL, 0), -EINVAL);
    EXPECT_RC(bgl_resources_set_closed_cb(NULL, on_closed, NULL), -EINVAL);
    EXPECT_RC(bgl_resources_count(NULL), -EINVAL);
    EXPECT_RC(bgl_resources_is_closing(NULL), -EINVAL);
    EXPECT_RC(bgl_resources_get_report(NULL, &rep), -EINVAL);
    EXPECT_RC(bgl_resources_get_report(f.rs, NULL), -EINVAL);
    cr_assert_null(bgl_resource_name(NULL));

    /* A stack with entries cannot be freed: nothing is dropped unclosed. */
    obj *o = fx_push(&f, 1, CLOSE_ASYNC);
    EXPECT_RC(bgl_resources_free(f.rs), -EBUSY);
    OK(bgl_resources_close(f.rs, -1));
    EXPECT_RC(bgl_resource_done(o->token, 1, NULL), -EINVAL);   /* positive errno */
    OK(bgl_resource_done(o->token, 0, NULL));
    fx_free(&f);
}
