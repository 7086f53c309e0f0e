/* A consumer of the installed library, built only with pkg-config's flags:
 * proves that the headers, the library and bgloop.pc fit together. */
#include <bgloop/bgloop.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void hello(void *userdata)
{
    ++*(int *)userdata;
}

int main(void)
{
    const char *text = bgl_strerror(-EINVAL);
    if (text == NULL || text[0] == '\0')
        return 1;
    bgl_loop *loop;
    if (bgl_loop_new(&loop) != 0)
        return 2;
    int calls = 0;
    if (bgl_loop_call_soon(loop, hello, &calls) != 0 || bgl_loop_run(loop) != 0 || calls != 1)
        return 3;
    if (bgl_loop_free(loop) != 0)
        return 4;
    printf("bgloop %s: bgl_strerror(-EINVAL) = \"%s\"\n", bgl_version(), text);
    return 0;
}
