/* test_loop_io.c - I/O watchers: read, write, hang-up and error delivery,
 * level triggering, interest changes and fd validation. */
#include "helpers.h"

#ifndef _WIN32
#  include <sys/resource.h>
#endif

TestSuite(io, .timeout = BGL_TEST_TIMEOUT);

/* What the last callback saw. */
static struct {
    int calls;
    bgl_fd fd;
    unsigned revents;
    unsigned all_revents; /* union over all calls */
    void *userdata;
    bgl_io *io;
    int drain;
} seen;

static void note_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    seen.calls++;
    seen.io = io;
    seen.fd = fd;
    seen.revents = revents;
    seen.all_revents |= revents;
    seen.userdata = ud;
    if (seen.drain)
        drain(fd);
}

Test(io, readable_pipe_delivers_read_with_fd_and_userdata)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    int tag = 0;
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, &tag, &io));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0); /* nothing written yet */
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.calls, 1);
    cr_assert_eq(seen.io, io);
    cr_assert_eq(seen.fd, p[0]);
    cr_assert_eq(seen.userdata, &tag);
    cr_assert_eq(seen.revents, BGL_IO_READ, "revents %#x", seen.revents);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, level_triggered_until_drained)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io));
    write_byte(p[1]);
    for (int i = 1; i <= 3; i++) {
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
        cr_assert_eq(seen.calls, i);
    }
    drain(p[0]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(seen.calls, 3);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, writable_socket_delivers_write)
{
    bgl_loop *loop = new_loop();
    bgl_fd s[2];
    make_socketpair(s);
    bgl_io *io;
    OK(bgl_io_new(loop, s[0], BGL_IO_WRITE, note_io, NULL, &io));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.revents, BGL_IO_WRITE, "revents %#x", seen.revents);
    OK(bgl_io_free(io));
    close_pair(s);
    free_loop(loop);
}

Test(io, interest_filters_reported_events)
{
    bgl_loop *loop = new_loop();
    bgl_fd s[2];
    make_socketpair(s);
    write_byte(s[1]); /* s[0] is now readable and writable */
    bgl_io *io;
    unsigned ev = 99;
    OK(bgl_io_new(loop, s[0], BGL_IO_READ, note_io, NULL, &io));
    OK(bgl_io_get_events(io, &ev));
    cr_assert_eq(ev, BGL_IO_READ);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.revents, BGL_IO_READ, "revents %#x", seen.revents);

    OK(bgl_io_set_events(io, BGL_IO_WRITE));
    OK(bgl_io_get_events(io, &ev));
    cr_assert_eq(ev, BGL_IO_WRITE);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.revents, BGL_IO_WRITE, "revents %#x", seen.revents);

    OK(bgl_io_set_events(io, BGL_IO_READ | BGL_IO_WRITE));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.revents, BGL_IO_READ | BGL_IO_WRITE, "revents %#x", seen.revents);

    OK(bgl_io_set_events(io, 0)); /* paused */
    OK(bgl_io_get_events(io, &ev));
    cr_assert_eq(ev, 0);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(seen.calls, 3);

    OK(bgl_io_set_events(io, BGL_IO_READ)); /* resumed */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_io_free(io));
    close_pair(s);
    free_loop(loop);
}

Test(io, watcher_created_paused_never_fires_until_given_interest)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    write_byte(p[1]);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], 0, note_io, NULL, &io));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_io_set_events(io, BGL_IO_READ));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, closed_writer_delivers_hup_to_the_reader)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io));
    close(p[1]);
    p[1] = BGL_TEST_NOFD;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert(seen.revents & BGL_IO_HUP, "revents %#x lacks HUP", seen.revents);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, closed_reader_delivers_error_to_the_writer)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[1], BGL_IO_WRITE, note_io, NULL, &io));
    close(p[0]);
    p[0] = BGL_TEST_NOFD;
#ifdef _WIN32
    /* The "pipe" is a TCP pair: the writer learns of the closed reader from
     * the reset its next send brings back. */
    write_byte(p[1]);
    for (int i = 0; i < 3000 && !(seen.revents & BGL_IO_ERROR); i++) {
        cr_assert_geq(bgl_loop_run_once(loop, 0), 0);
        Sleep(1);
    }
#else
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
#endif
    cr_assert(seen.revents & BGL_IO_ERROR, "revents %#x lacks ERROR", seen.revents);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, hup_is_delivered_whatever_the_interest)
{
    /* Interest WRITE only on a read end: the hang-up still arrives. */
    bgl_loop *loop = new_loop();
    bgl_fd s[2];
    make_socketpair(s);
    char big[65536] = {0};
    while (write(s[0], big, sizeof big) > 0) {
    } /* fill: s[0] is no longer writable */
    bgl_io *io;
    OK(bgl_io_new(loop, s[0], BGL_IO_WRITE, note_io, NULL, &io));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    close(s[1]);
    s[1] = BGL_TEST_NOFD;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert(seen.revents & (BGL_IO_HUP | BGL_IO_ERROR), "revents %#x lacks HUP/ERROR",
              seen.revents);
    OK(bgl_io_free(io));
    close_pair(s);
    free_loop(loop);
}

Test(io, second_watcher_on_the_same_fd_is_eexist)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io, *io2 = NULL;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io));
    EXPECT_RC(bgl_io_new(loop, p[0], BGL_IO_WRITE, note_io, NULL, &io2), -EEXIST);
    OK(bgl_io_free(io));
    /* Once freed, the fd may be watched again. */
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io2));
    OK(bgl_io_free(io2));
    close_pair(p);
    free_loop(loop);
}

Test(io, the_same_fd_may_be_watched_by_two_loops)
{
    bgl_loop *a = new_loop(), *b = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *ia, *ib;
    OK(bgl_io_new(a, p[0], BGL_IO_READ, note_io, NULL, &ia));
    OK(bgl_io_new(b, p[0], BGL_IO_READ, note_io, NULL, &ib));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(a, 0), 1);
    EXPECT_RC(bgl_loop_run_once(b, 0), 1);
    OK(bgl_io_free(ia));
    OK(bgl_io_free(ib));
    close_pair(p);
    free_loop(a);
    free_loop(b);
}

Test(io, negative_or_closed_fd_is_ebadf)
{
    bgl_loop *loop = new_loop();
    bgl_io *io = NULL;
    EXPECT_RC(bgl_io_new(loop, -1, BGL_IO_READ, note_io, NULL, &io), -EBADF);
    bgl_fd p[2];
    make_pipe(p);
    int closed = p[0];
    close_pair(p);
    EXPECT_RC(bgl_io_new(loop, closed, BGL_IO_READ, note_io, NULL, &io), -EBADF);
    EXPECT_RC(bgl_io_new(loop, closed, 0, note_io, NULL, &io), -EBADF);
    free_loop(loop);
}

Test(io, regular_file_is_eperm_with_epoll)
{
    bgl_loop *loop = new_loop();
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    bgl_io *io = NULL;
#ifdef _WIN32
    /* Sockets only: a file's handle is no socket. */
    intptr_t h = _get_osfhandle(fileno(f));
    EXPECT_RC(bgl_io_new(loop, (bgl_fd)h, BGL_IO_READ, note_io, NULL, &io), -EBADF);
    fclose(f);
    free_loop(loop);
    return;
#endif
    int rc = bgl_io_new(loop, fileno(f), BGL_IO_READ, note_io, NULL, &io);
    if (BGL_TEST_POLL) {
        cr_assert(rc == 0 || rc == -EPERM, "rc %d (%s)", rc, bgl_strerror(rc));
        if (rc == 0)
            OK(bgl_io_free(io));
    } else {
        cr_assert_eq(rc, -EPERM, "rc %d (%s)", rc, bgl_strerror(rc));
    }
    fclose(f);
    free_loop(loop);
}

Test(io, unknown_event_bits_are_einval_and_error_hup_interest_is_ignored)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io = NULL;
    EXPECT_RC(bgl_io_new(loop, p[0], 1u << 7, note_io, NULL, &io), -EINVAL);
    EXPECT_RC(bgl_io_new(loop, p[0], BGL_IO_READ | (1u << 31), note_io, NULL, &io), -EINVAL);
    OK(bgl_io_new(loop, p[0], BGL_IO_READ | BGL_IO_ERROR | BGL_IO_HUP, note_io, NULL, &io));
    EXPECT_RC(bgl_io_set_events(io, 1u << 5), -EINVAL);
    OK(bgl_io_set_events(io, BGL_IO_ERROR | BGL_IO_HUP));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, get_fd_returns_the_watched_descriptor)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[1], BGL_IO_WRITE, note_io, NULL, &io));
    cr_assert_eq(bgl_io_get_fd(io), (intptr_t)p[1]);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, set_events_on_a_closed_fd_reports_the_backend_error)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io));
    close(p[0]); /* behind the watcher's back */
    int rc = bgl_io_set_events(io, BGL_IO_READ | BGL_IO_WRITE);
    if (BGL_TEST_POLL)
        cr_assert(rc == 0 || rc == -EBADF, "rc %d (%s)", rc, bgl_strerror(rc));
    else
        cr_assert_eq(rc, -EBADF, "rc %d (%s)", rc, bgl_strerror(rc));
    OK(bgl_io_free(io));
    close(p[1]);
    free_loop(loop);
}

#define NPIPES 64
static int pipe_calls[NPIPES];
static void count_pipe(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents;
    pipe_calls[(intptr_t)ud]++;
    drain(fd);
}

Test(io, sixty_four_ready_watchers_each_dispatched_once)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[NPIPES][2];
    bgl_io *io[NPIPES];
    for (int i = 0; i < NPIPES; i++) {
        make_pipe(p[i]);
        OK(bgl_io_new(loop, p[i][0], BGL_IO_READ, count_pipe, (void *)(intptr_t)i, &io[i]));
    }
    /* Free a few from the middle so that the backend compacts its set. */
    for (int i = 5; i < NPIPES; i += 9) {
        OK(bgl_io_free(io[i]));
        io[i] = NULL;
    }
    for (int i = 0; i < NPIPES; i++)
        write_byte(p[i][1]);
    int expected = 0;
    for (int i = 0; i < NPIPES; i++)
        expected += io[i] != NULL;
    EXPECT_RC(bgl_loop_run_once(loop, 0), expected);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    for (int i = 0; i < NPIPES; i++) {
        cr_assert_eq(pipe_calls[i], io[i] ? 1 : 0, "pipe %d dispatched %d times", i, pipe_calls[i]);
        if (io[i])
            OK(bgl_io_free(io[i]));
        close_pair(p[i]);
    }
    free_loop(loop);
}

Test(io, watcher_is_work_for_run_until_freed)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    seen.drain = 1;
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, note_io, NULL, &io));
    write_byte(p[1]);
    OK(bgl_loop_set_budget(loop, -1));
    /* One iteration dispatches it; paused, it no longer keeps run() alive. */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_io_set_events(io, 0));
    OK(bgl_loop_run(loop));
    cr_assert_eq(seen.calls, 1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(io, high_numbered_descriptor_is_watched)
{
    /* Beyond FD_SETSIZE and any small fixed table a backend might keep. */
    enum { HIGH = 3000 };
#ifdef _WIN32
    cr_skip_test("not on Windows: descriptor numbers are socket handles, chosen by the system");
#else
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= HIGH) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= HIGH)
            cr_skip_test("RLIMIT_NOFILE hard limit %llu too low", (unsigned long long)rl.rlim_max);
        rl.rlim_cur = HIGH + 1;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
    }
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    cr_assert_eq(dup3(p[0], HIGH, O_CLOEXEC), HIGH, "dup3: %s", strerror(errno));
    close(p[0]);
    p[0] = HIGH;
    bgl_io *io;
    OK(bgl_io_new(loop, HIGH, BGL_IO_READ, note_io, NULL, &io));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(seen.fd, HIGH);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
#endif
}
