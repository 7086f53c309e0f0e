/* test_service_graph.c - large dependency graphs: a diamond of 20 layers of
 * 50 services, each depending on every service of the layer below, starts
 * in dependency order and stops dependents first.  Correctness only: the
 * benchmark (bench/) measures the time. */
#include "lifecycle-harness.h"

TestSuite(service_graph, .timeout = BGL_TEST_TIMEOUT);

#define LAYERS 20
#define WIDTH 50
#define COUNT (LAYERS * WIDTH)

typedef struct graph {
    world w;
    bgl_service *svc[COUNT];
    long started_at[COUNT], stopped_at[COUNT];
    long clock;               /* counts hook calls */
    int bad_order;
} graph;

static graph *G;

static int g_start(bgl_service *svc, void *ud)
{
    int i = (int)(intptr_t)ud, layer = i / WIDTH;
    G->started_at[i] = ++G->clock;
    /* Every dependency must be running already. */
    for (int k = 0; layer > 0 && k < WIDTH; k++)
        if (bgl_service_get_state(G->svc[(layer - 1) * WIDTH + k]) != BGL_SERVICE_RUNNING)
            G->bad_order++;
    return bgl_service_ready(svc);
}

static void g_stop(bgl_service *svc, void *ud)
{
    int i = (int)(intptr_t)ud, layer = i / WIDTH;
    G->stopped_at[i] = ++G->clock;
    /* Every dependent must be down already. */
    for (int k = 0; layer + 1 < LAYERS && k < WIDTH; k++)
        if (bgl_service_get_state(G->svc[(layer + 1) * WIDTH + k]) != BGL_SERVICE_STOPPED)
            G->bad_order++;
    OK(bgl_service_exited(svc, 0, NULL));
}

Test(service_graph, diamond_of_twenty_layers_starts_and_stops_in_order)
{
    G = calloc(1, sizeof *G);
    cr_assert_not_null(G);
    world_init(&G->w);
    const bgl_service_hooks hooks = {.start = g_start, .stop = g_stop};
    static char names[COUNT][16];
    static const char *deps[LAYERS][WIDTH + 1];
    for (int i = 0; i < COUNT; i++)
        snprintf(names[i], sizeof names[i], "s%d_%d", i / WIDTH, i % WIDTH);
    for (int l = 0; l < LAYERS; l++) {
        for (int k = 0; k < WIDTH; k++)
            deps[l][k] = names[l * WIDTH + k];
        deps[l][WIDTH] = NULL;
    }
    /* Registered top layer first: every dependency is resolved later. */
    for (int l = LAYERS - 1; l >= 0; l--) {
        for (int k = 0; k < WIDTH; k++) {
            int i = l * WIDTH + k;
            bgl_service_config cfg;
            bgl_service_config_init(&cfg);
            cfg.name = names[i];
            cfg.owner = l % 2 ? "odd" : "even";
            cfg.depends_on = l ? deps[l - 1] : NULL;
            OK(bgl_service_add(G->w.mgr, &cfg, &hooks, (void *)(intptr_t)i, &G->svc[i]));
        }
    }
    OK(bgl_services_start(G->w.mgr, NULL));
    settle(&G->w);
    for (int i = 0; i < COUNT; i++)
        cr_assert_eq(bgl_service_get_state(G->svc[i]), BGL_SERVICE_RUNNING, "%s", names[i]);
    cr_assert_eq(G->bad_order, 0);
    EXPECT_RC(bgl_services_active(G->w.mgr, NULL), COUNT);

    /* Stopping the bottom layer's owner takes every layer above down first,
     * and they stay wanted: starting "even" again brings everything back. */
    OK(bgl_services_stop(G->w.mgr, "even"));
    settle(&G->w);
    for (int i = 0; i < COUNT; i++)
        cr_assert_eq(bgl_service_get_state(G->svc[i]), BGL_SERVICE_STOPPED, "%s", names[i]);
    cr_assert_eq(G->bad_order, 0);
    EXPECT_RC(bgl_services_active(G->w.mgr, NULL), 0);   /* "odd" waits for nothing coming */
    OK(bgl_services_start(G->w.mgr, "even"));
    settle(&G->w);
    for (int i = 0; i < COUNT; i++)
        cr_assert_eq(bgl_service_get_state(G->svc[i]), BGL_SERVICE_RUNNING, "%s", names[i]);

    OK(bgl_services_stop(G->w.mgr, NULL));
    settle(&G->w);
    for (int i = 0; i < COUNT; i++)
        cr_assert_eq(bgl_service_get_state(G->svc[i]), BGL_SERVICE_STOPPED, "%s", names[i]);
    cr_assert_eq(G->bad_order, 0);
    EXPECT_RC(bgl_services_nothing_left(G->w.mgr), 1);
    EXPECT_RC(bgl_services_remove(G->w.mgr, NULL), COUNT);
    OK(bgl_services_free(G->w.mgr));
    free_loop(G->w.loop);
    free(G);
}

/* Removing a dependency makes it unknown again; adding it back resolves it. */
Test(service_graph, removed_dependency_is_unknown_until_added_again)
{
    world w;
    world_init(&w);
    fake_svc *db = add(&w, "db", NULL);
    fake_svc *api = add(&w, "api", DEPS("db"));
    db->ready_on_start = api->ready_on_start = 1;
    OK(bgl_service_remove(db->svc));
    EXPECT_RC(bgl_services_start(w.mgr, NULL), -ENOENT);
    cr_assert_str_eq(bgl_services_last_error(w.mgr),
                     "service 'api' depends on unknown service 'db'");
    fake_svc *db2 = add(&w, "db", NULL);
    db2->ready_on_start = 1;
    OK(bgl_services_start(w.mgr, NULL));
    settle(&w);
    EXPECT_STATE(api, BGL_SERVICE_RUNNING);
    EXPECT_LOG(&w, "start:db start:api");
    world_free(&w);
}
