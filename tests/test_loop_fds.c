/* test_loop_fds.c - descriptor hygiene: a loop that was created, used with
 * every kind of source and destroyed leaves the process's descriptor count
 * unchanged, and everything it opens is close-on-exec. */
#include "helpers.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

TestSuite(fds, .timeout = BGL_TEST_TIMEOUT);

static void count_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    drain(fd);
    counted++;
}

static void *post(void *loop)
{
    bgl_loop_call_threadsafe(loop, count_call, NULL, NULL);
    return NULL;
}

/* Create a loop, use every kind of source once, free everything. */
static void use_a_loop_fully(void)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    bgl_timer *t;
    bgl_signal *s;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, count_io, NULL, &io));
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 0, 0));
    OK(bgl_signal_new(loop, SIGUSR1, count_signal, NULL, &s));
    (void)bgl_loop_get_fd(loop); /* a host may ask for it */
    write_byte(p[1]);
    cr_assert_eq(raise(SIGUSR1), 0);
    OK(bgl_loop_call_soon(loop, count_call, NULL));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post, loop), 0);
    pthread_join(th, NULL);
    counted = 0;
    for (int i = 0; i < 10 && counted < 5; i++)
        cr_assert_geq(bgl_loop_run_once(loop, 30 * SEC), 0);
    cr_assert_eq(counted, 5, "%d of 5 callbacks ran", counted);
    OK(bgl_signal_free(s));
    OK(bgl_timer_free(t));
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(fds, descriptor_count_unchanged_after_a_loop_is_created_used_and_destroyed)
{
    int before = count_open_fds();
    use_a_loop_fully();
    cr_assert_eq(count_open_fds(), before, "%d descriptors before, %d after", before,
                 count_open_fds());
}

Test(fds, two_hundred_loops_in_a_row_leak_no_descriptor)
{
    int before = count_open_fds();
    for (int i = 0; i < 200; i++) {
        bgl_loop *loop = new_loop();
        OK(bgl_loop_call_threadsafe(loop, count_call, NULL, NULL));
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
        free_loop(loop);
    }
    cr_assert_eq(count_open_fds(), before, "%d descriptors before, %d after", before,
                 count_open_fds());
}

/* Leave exactly `room` descriptor numbers free below the soft limit: fill
 * every other free slot with /dev/null.  Returns how many were opened. */
static int fill_descriptors(int *fillers, int cap, int room)
{
    int n = 0;
    bgl_fd fd;
    while (n < cap && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        fillers[n++] = fd;
    cr_assert_eq(errno, EMFILE, "filling the descriptor table: %s", strerror(errno));
    for (int i = 0; i < room && n > 0; i++)
        close(fillers[--n]);
    return n;
}

/* count_open_fds() needs a descriptor of its own; this does not. */
static int count_fds_below(int limit)
{
    int n = 0;
    for (int fd = 0; fd < limit; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* bgl_loop_new() needs several descriptors (epoll, eventfd or a pipe); when
 * one of them cannot be had it fails with -EMFILE and closes the ones it
 * already opened. */
Test(fds, loop_new_failing_halfway_for_lack_of_descriptors_leaks_none)
{
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    struct rlimit low = old;
    low.rlim_cur = old.rlim_max < 256 ? old.rlim_max : 256;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int fillers[256];
    int failures = 0;
    for (int room = 0; room <= 3; room++) {
        int n = fill_descriptors(fillers, 256, room);
        int before = count_fds_below(4096);
        bgl_loop *loop = NULL;
        int r = bgl_loop_new(&loop);
        if (r == 0) {
            free_loop(loop);
        } else {
            EXPECT_RC(r, -EMFILE);
            failures++;
        }
        int after = count_fds_below(4096);
        cr_assert_eq(after, before, "room %d: %d descriptors before, %d after", room, before,
                     after);
        while (n > 0)
            close(fillers[--n]);
    }
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    cr_assert_geq(failures, 1, "bgl_loop_new() never ran out of descriptors");
}

Test(fds, signal_sources_created_and_freed_in_a_loop_leak_no_descriptor)
{
    bgl_loop *loop = new_loop();
    /* The loop may keep a descriptor for signals once one was used (freed
     * with the loop); what must not grow is the count per source. */
    bgl_signal *first;
    OK(bgl_signal_new(loop, SIGUSR2, count_signal, NULL, &first));
    OK(bgl_signal_free(first));
    int before = count_open_fds();
    for (int i = 0; i < 50; i++) {
        bgl_signal *s;
        OK(bgl_signal_new(loop, SIGUSR2, count_signal, NULL, &s));
        OK(bgl_signal_free(s));
    }
    cr_assert_eq(count_open_fds(), before);
    free_loop(loop);
}

Test(fds, io_watchers_never_close_the_watched_descriptor)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, count_io, NULL, &io));
    OK(bgl_io_free(io));
    cr_assert_neq(fcntl(p[0], F_GETFD), -1, "bgl_io_free closed the fd");
    free_loop(loop);
    cr_assert_neq(fcntl(p[0], F_GETFD), -1);
    close_pair(p);
}

/* Every descriptor the loop (and a signal source) opens is close-on-exec. */
static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

Test(fds, all_loop_descriptors_are_close_on_exec)
{
    enum { MAXFD = 1024 };
    static char was_open[MAXFD];
    for (int fd = 0; fd < MAXFD; fd++)
        was_open[fd] = (char)is_open(fd);
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, count_signal, NULL, &s));
    int fresh = 0;
    for (int fd = 0; fd < MAXFD; fd++) {
        if (was_open[fd] || !is_open(fd))
            continue;
        fresh++;
        cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "loop descriptor %d is not close-on-exec", fd);
    }
    cr_assert_gt(fresh, 0, "the loop opened no descriptor at all?");
    OK(bgl_signal_free(s));
    free_loop(loop);
}
