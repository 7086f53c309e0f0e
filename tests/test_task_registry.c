/* test_task_registry.c - the task registry: states, completion callbacks,
 * cancellation, abandoned entries, per-owner lookup/counts/cancel, and bad
 * input. */
#include "helpers.h"

TestSuite(task_registry, .timeout = BGL_TEST_TIMEOUT);

static bgl_tasks *new_reg(void)
{
    bgl_tasks *reg = NULL;
    OK(bgl_tasks_new(&reg));
    return reg;
}

static bgl_task *new_task(bgl_tasks *reg, const char *owner, const char *name,
                          bgl_task_cancel_fn cancel, void *ud)
{
    bgl_task *t = NULL;
    OK(bgl_task_new(reg, owner, name, cancel, ud, &t));
    return t;
}

typedef struct done_log {
    char text[512];
} done_log;

static void log_done(bgl_task *t, bgl_task_state st, void *ud)
{
    done_log *l = ud;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s%s=%s", len ? " " : "", bgl_task_name(t),
             bgl_task_state_name(st));
}

Test(task_registry, task_moves_pending_running_done_with_counts)
{
    bgl_tasks *reg = new_reg();
    bgl_task *t = new_task(reg, "addon", "job", NULL, NULL);
    EXPECT_RC(bgl_task_get_state(t), BGL_TASK_PENDING);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 1);
    OK(bgl_task_set_running(t));
    EXPECT_RC(bgl_task_get_state(t), BGL_TASK_RUNNING);
    EXPECT_RC(bgl_task_set_running(t), -EALREADY);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 1);
    OK(bgl_task_finish(t, BGL_TASK_DONE, NULL));
    EXPECT_RC(bgl_task_get_state(t), BGL_TASK_DONE);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    EXPECT_RC(bgl_task_finish(t, BGL_TASK_FAILED, "late"), -EALREADY);
    EXPECT_RC(bgl_task_set_running(t), -EALREADY);
    EXPECT_RC(bgl_task_cancel(t), -EALREADY);
    cr_assert_null(bgl_task_error(t));
    bgl_task_counts c;
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert(c.done == 1 && c.total == 1 && c.pending == 0 && c.running == 0);
    OK(bgl_task_free(t));
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.total, 0);
    OK(bgl_tasks_free(reg));
}

Test(task_registry, task_failure_keeps_error_text_and_calls_callbacks_in_order)
{
    bgl_tasks *reg = new_reg();
    bgl_task *t = new_task(reg, "addon", "fetch", NULL, NULL);
    done_log a = {{0}}, b = {{0}};
    OK(bgl_task_add_done_cb(t, log_done, &a));
    OK(bgl_task_add_done_cb(t, log_done, &b));
    OK(bgl_task_finish(t, BGL_TASK_FAILED, "timeout talking to server"));
    cr_assert_str_eq(a.text, "fetch=failed");
    cr_assert_str_eq(b.text, "fetch=failed");
    cr_assert_str_eq(bgl_task_error(t), "timeout talking to server");
    EXPECT_RC(bgl_task_add_done_cb(t, log_done, &a), -EALREADY);
    OK(bgl_tasks_free(reg));   /* frees the entry too */
}

static void cancel_later(bgl_task *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

static void cancel_now(bgl_task *t, void *ud)
{
    (*(int *)ud)++;
    OK(bgl_task_finish(t, BGL_TASK_CANCELLED, NULL));
}

Test(task_registry, task_cancel_goes_through_the_hook)
{
    bgl_tasks *reg = new_reg();
    int asked = 0;
    done_log l = {{0}};
    bgl_task *slow = new_task(reg, "addon", "slow", cancel_later, &asked);
    OK(bgl_task_set_running(slow));
    OK(bgl_task_add_done_cb(slow, log_done, &l));
    OK(bgl_task_cancel(slow));
    cr_assert_eq(asked, 1);
    EXPECT_RC(bgl_task_get_state(slow), BGL_TASK_RUNNING);   /* the host decides */
    OK(bgl_task_finish(slow, BGL_TASK_CANCELLED, NULL));
    cr_assert_str_eq(l.text, "slow=cancelled");

    bgl_task *quick = new_task(reg, "addon", "quick", cancel_now, &asked);
    OK(bgl_task_cancel(quick));
    cr_assert_eq(asked, 2);
    EXPECT_RC(bgl_task_get_state(quick), BGL_TASK_CANCELLED);

    bgl_task *bare = new_task(reg, "addon", "bare", NULL, NULL);
    OK(bgl_task_cancel(bare));   /* nothing to interrupt: cancelled at once */
    EXPECT_RC(bgl_task_get_state(bare), BGL_TASK_CANCELLED);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    OK(bgl_tasks_free(reg));
}

static void free_self(bgl_task *t, bgl_task_state st, void *ud)
{
    (void)st;
    (*(int *)ud)++;
    OK(bgl_task_free(t));
}

static void free_registry_refused(bgl_task *t, bgl_task_state st, void *ud)
{
    (void)t, (void)st;
    EXPECT_RC(bgl_tasks_free(ud), -EBUSY);
}

/* Runs after free_self: the entry was freed by then, but stays readable
 * until its callbacks returned, and a second free is refused. */
static void after_free(bgl_task *t, bgl_task_state st, void *ud)
{
    (void)st;
    (*(int *)ud)++;
    cr_assert_str_eq(bgl_task_name(t), "once");
    EXPECT_RC(bgl_task_free(t), -EINVAL);
}

Test(task_registry, task_may_be_freed_from_its_own_callback)
{
    bgl_tasks *reg = new_reg();
    int calls = 0;
    bgl_task *t = new_task(reg, "addon", "once", NULL, NULL);
    OK(bgl_task_add_done_cb(t, free_registry_refused, reg));
    OK(bgl_task_add_done_cb(t, free_self, &calls));
    OK(bgl_task_add_done_cb(t, after_free, &calls));
    OK(bgl_task_finish(t, BGL_TASK_DONE, NULL));
    cr_assert_eq(calls, 2);
    bgl_task_counts c;
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.total, 0);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    OK(bgl_tasks_free(reg));
}

Test(task_registry, task_lookup_counts_and_cancel_per_owner)
{
    bgl_tasks *reg = new_reg();
    int a_asked = 0, b_asked = 0;
    bgl_task *a1 = new_task(reg, "addon_a", "poll", cancel_now, &a_asked);
    bgl_task *b1 = new_task(reg, "addon_b", "poll", cancel_now, &b_asked);
    bgl_task *a2 = new_task(reg, "addon_a", "serve", cancel_now, &a_asked);
    bgl_task *a3 = new_task(reg, "addon_a", "done", NULL, NULL);
    OK(bgl_task_set_running(a2));
    OK(bgl_task_finish(a3, BGL_TASK_DONE, NULL));

    EXPECT_RC(bgl_tasks_active(reg, "addon_a"), 2);
    EXPECT_RC(bgl_tasks_active(reg, "addon_b"), 1);
    EXPECT_RC(bgl_tasks_active(reg, "nobody"), 0);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 3);
    bgl_task_counts c;
    OK(bgl_tasks_count(reg, "addon_a", &c));
    cr_assert(c.pending == 1 && c.running == 1 && c.done == 1 && c.total == 3);

    bgl_task *list[8];
    EXPECT_RC(bgl_tasks_list(reg, "addon_a", list, 8), 3);
    cr_assert(list[0] == a1 && list[1] == a2 && list[2] == a3);
    EXPECT_RC(bgl_tasks_list(reg, NULL, list, 2), 4);   /* count exceeds cap */
    cr_assert(list[0] == a1 && list[1] == b1);
    EXPECT_RC(bgl_tasks_list(reg, NULL, NULL, 0), 4);

    bgl_task *found = NULL;
    OK(bgl_tasks_find(reg, "addon_b", "poll", &found));
    cr_assert_eq(found, b1);
    OK(bgl_tasks_find(reg, NULL, "poll", &found));
    cr_assert_eq(found, a1);
    EXPECT_RC(bgl_tasks_find(reg, "addon_b", "serve", &found), -ENOENT);

    EXPECT_RC(bgl_tasks_cancel(reg, "addon_a"), 2);
    cr_assert_eq(a_asked, 2);
    cr_assert_eq(b_asked, 0);
    EXPECT_RC(bgl_task_get_state(b1), BGL_TASK_PENDING);
    EXPECT_RC(bgl_tasks_active(reg, "addon_a"), 0);
    EXPECT_RC(bgl_tasks_cancel(reg, "addon_a"), 0);   /* repeat: harmless */
    EXPECT_RC(bgl_tasks_cancel(reg, NULL), 1);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    OK(bgl_tasks_free(reg));
}

typedef struct spawner {
    bgl_tasks *reg;
    bgl_task *child;
    int asked;
} spawner;

/* Cancelling spawns a replacement and frees itself: the owner-wide cancel
 * must neither touch freed memory nor cancel the newcomer. */
static void cancel_spawns(bgl_task *t, void *ud)
{
    spawner *s = ud;
    s->asked++;
    OK(bgl_task_new(s->reg, bgl_task_owner(t), "cleanup", NULL, NULL, &s->child));
    OK(bgl_task_free(t));
}

Test(task_registry, task_cancel_of_owner_tolerates_hooks_that_create_and_free)
{
    bgl_tasks *reg = new_reg();
    spawner s = {.reg = reg};
    new_task(reg, "addon", "one", cancel_spawns, &s);
    new_task(reg, "addon", "two", NULL, NULL);
    EXPECT_RC(bgl_tasks_cancel(reg, "addon"), 2);
    cr_assert_eq(s.asked, 1);
    cr_assert_not_null(s.child);
    EXPECT_RC(bgl_task_get_state(s.child), BGL_TASK_PENDING);
    EXPECT_RC(bgl_tasks_active(reg, "addon"), 1);
    OK(bgl_tasks_free(reg));
}

static void swallow_cancel(bgl_task *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

Test(task_registry, task_abandoned_is_not_counted_as_active)
{
    bgl_tasks *reg = new_reg();
    int asked = 0;
    bgl_task *t = new_task(reg, "addon", "stubborn", swallow_cancel, &asked);
    bgl_task *u = new_task(reg, "addon", "other", NULL, NULL);
    OK(bgl_task_set_running(t));
    OK(bgl_task_cancel(t));
    cr_assert_eq(asked, 1);
    EXPECT_RC(bgl_task_is_abandoned(t), 0);
    OK(bgl_task_abandon(t));
    OK(bgl_task_abandon(t));   /* again: harmless */
    EXPECT_RC(bgl_task_is_abandoned(t), 1);
    EXPECT_RC(bgl_task_get_state(t), BGL_TASK_RUNNING);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 1);
    EXPECT_RC(bgl_tasks_active(reg, "addon"), 1);
    bgl_task_counts c;
    OK(bgl_tasks_count(reg, "addon", &c));
    cr_assert(c.running == 1 && c.pending == 1 && c.abandoned == 1 && c.total == 2);
    /* bgl_tasks_cancel() still reaches it. */
    EXPECT_RC(bgl_tasks_cancel(reg, "addon"), 2);
    cr_assert_eq(asked, 2);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    /* It may still finish late; then it is no longer abandoned-active. */
    OK(bgl_task_finish(t, BGL_TASK_CANCELLED, NULL));
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.abandoned, 0);
    EXPECT_RC(bgl_task_abandon(t), -EALREADY);
    EXPECT_RC(bgl_task_abandon(NULL), -EINVAL);
    EXPECT_RC(bgl_task_is_abandoned(NULL), -EINVAL);
    /* Freeing an abandoned active entry keeps the count right. */
    bgl_task *v = new_task(reg, "addon", "v", NULL, NULL);
    OK(bgl_task_abandon(v));
    OK(bgl_task_free(v));
    OK(bgl_tasks_count(reg, NULL, &c));
    cr_assert_eq(c.abandoned, 0);
    EXPECT_RC(bgl_tasks_active(reg, NULL), 0);
    EXPECT_RC(bgl_task_get_state(u), BGL_TASK_CANCELLED);
    OK(bgl_tasks_free(reg));
}

Test(task_registry, task_bad_input_is_refused)
{
    bgl_tasks *reg = new_reg();
    bgl_task *t = NULL;
    bgl_task_counts c;
    EXPECT_RC(bgl_tasks_new(NULL), -EINVAL);
    EXPECT_RC(bgl_tasks_free(NULL), -EINVAL);
    EXPECT_RC(bgl_tasks_active(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_tasks_count(NULL, NULL, &c), -EINVAL);
    EXPECT_RC(bgl_tasks_count(reg, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_tasks_list(NULL, NULL, NULL, 0), -EINVAL);
    EXPECT_RC(bgl_tasks_list(reg, NULL, NULL, 3), -EINVAL);
    EXPECT_RC(bgl_tasks_find(NULL, NULL, "x", &t), -EINVAL);
    EXPECT_RC(bgl_tasks_find(reg, NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_tasks_find(reg, NULL, "x", NULL), -EINVAL);
    EXPECT_RC(bgl_tasks_find(reg, NULL, "x", &t), -ENOENT);
    EXPECT_RC(bgl_tasks_cancel(NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_task_new(NULL, "o", "n", NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_task_new(reg, NULL, "n", NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_task_new(reg, "", "n", NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_task_new(reg, "o", NULL, NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_task_new(reg, "o", "", NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_task_new(reg, "o", "n", NULL, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_task_set_running(NULL), -EINVAL);
    EXPECT_RC(bgl_task_finish(NULL, BGL_TASK_DONE, NULL), -EINVAL);
    EXPECT_RC(bgl_task_cancel(NULL), -EINVAL);
    EXPECT_RC(bgl_task_add_done_cb(NULL, log_done, NULL), -EINVAL);
    EXPECT_RC(bgl_task_free(NULL), -EINVAL);
    EXPECT_RC(bgl_task_get_state(NULL), -EINVAL);
    cr_assert_null(bgl_task_name(NULL));
    cr_assert_null(bgl_task_owner(NULL));
    cr_assert_null(bgl_task_error(NULL));
    cr_assert_null(bgl_task_userdata(NULL));
    cr_assert_str_eq(bgl_task_state_name(42), "unknown");
    cr_assert_str_eq(bgl_task_state_name(BGL_TASK_RUNNING), "running");

    OK(bgl_task_new(reg, "o", "n", NULL, &c, &t));
    cr_assert_eq(bgl_task_userdata(t), &c);
    EXPECT_RC(bgl_task_add_done_cb(t, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_task_finish(t, BGL_TASK_PENDING, NULL), -EINVAL);
    EXPECT_RC(bgl_task_finish(t, BGL_TASK_RUNNING, NULL), -EINVAL);
    EXPECT_RC(bgl_task_finish(t, (bgl_task_state)99, NULL), -EINVAL);
    EXPECT_RC(bgl_task_get_state(t), BGL_TASK_PENDING);
    OK(bgl_task_free(t));
    OK(bgl_tasks_free(reg));
}
