/* two_services.c - the README's service example: "web" depends on "db", so
 * the manager starts db, waits until it reports ready, then starts web; on
 * Ctrl+C (SIGINT) it stops web first, then db, and bgl_loop_run() returns
 * the exit code (1 if a service failed for good).  Error checks are left out
 * for brevity; every call returns a negative errno on failure. */
#include <bgloop/bgloop.h>
#include <signal.h>
#include <stdio.h>

static int db_start(bgl_service *svc, void *ud)
{
    (void)ud;
    printf("db: up\n");
    return bgl_service_ready(svc);          /* or later, once it really is */
}

static int web_start(bgl_service *svc, void *ud)
{
    (void)ud;
    printf("web: db is running, serving\n");
    return bgl_service_ready(svc);
}

static void stop_now(bgl_service *svc, void *ud)
{
    (void)ud;
    printf("%s: stopping\n", bgl_service_name(svc));
    bgl_service_exited(svc, 0, NULL);       /* graceful stop done */
}

static void on_sigint(bgl_signal *sig, int signo, void *mgr)
{
    (void)sig, (void)signo;
    bgl_services_stop(mgr, NULL);           /* web first, then db */
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);       /* line by line, also into a pipe */
    bgl_loop *loop;
    bgl_services *mgr;
    bgl_signal *sig;
    bgl_loop_new(&loop);
    bgl_services_new(loop, &mgr);

    bgl_service_config cfg;
    bgl_service_config_init(&cfg);
    cfg.owner = "demo";
    cfg.name = "db";
    bgl_service_hooks db = {.start = db_start, .stop = stop_now};
    bgl_service_add(mgr, &cfg, &db, NULL, NULL);

    cfg.name = "web";
    cfg.depends_on = (const char *[]){"db", NULL};
    cfg.restart = BGL_RESTART_ON_FAILURE;
    bgl_service_hooks web = {.start = web_start, .stop = stop_now};
    bgl_service_add(mgr, &cfg, &web, NULL, NULL);

    bgl_signal_new(loop, SIGINT, on_sigint, mgr, &sig);
    bgl_services_set_keepalive(mgr, 1);     /* run() ends when all ended */
    bgl_services_start(mgr, NULL);
    int code = bgl_loop_run(loop);

    bgl_signal_free(sig);
    bgl_services_free(mgr);
    bgl_loop_free(loop);
    return code;
}
