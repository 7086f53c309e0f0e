/* hello_timer.c - the smallest bgloop program: a repeating timer that stops
 * itself after three ticks, after which bgl_loop_run() runs out of work and
 * returns.  This is the README quick start; build it outside the tree with
 *   cc hello_timer.c -o hello_timer $(pkg-config --cflags --libs bgloop)
 */
#include <bgloop/bgloop.h>
#include <stdio.h>

static void tick(bgl_timer *t, void *userdata)
{
    int *left = userdata;
    printf("tick %d\n", *left);
    if (--*left == 0)
        bgl_timer_stop(t);          /* no work left: bgl_loop_run() returns */
}

int main(void)
{
    bgl_loop *loop;
    bgl_timer *timer;
    int left = 3, r;

    if ((r = bgl_loop_new(&loop)) < 0) {
        fprintf(stderr, "bgl_loop_new: %s\n", bgl_strerror(r));
        return 1;
    }
    if ((r = bgl_timer_new(loop, tick, &left, &timer)) < 0 ||
        (r = bgl_timer_start(timer, 100000000, 100000000)) < 0) { /* 100 ms, then every 100 ms */
        fprintf(stderr, "timer: %s\n", bgl_strerror(r));
        return 1;
    }
    r = bgl_loop_run(loop);       /* the exit code of bgl_loop_stop(), 0 here */
    bgl_timer_free(timer);
    bgl_loop_free(loop);
    return r == 0 && left == 0 ? 0 : 1;
}
