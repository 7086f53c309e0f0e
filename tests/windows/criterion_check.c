/* Criterion under wine: each test runs in a sandbox process of its own, and
 * the runner reports passes, failures, exit codes and crashes as TAP.
 * scripts/win-criterion runs it before keeping a build. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>

Test(check, passes) {
    cr_assert_eq(1 + 1, 2);
}

Test(check, fails) {
    cr_assert_eq(1 + 1, 3, "expected to fail");
}

/* Would end the runner itself if the test did not run in a process of its
 * own. */
Test(check, exits, .exit_code = 3) {
    exit(3);
}

Test(check, crashes, .signal = SIGSEGV) {
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
}
