/* strerror.c - error text for the negative errno values the library returns.
 *
 * The C library's own descriptions, untranslated, copied once into a static
 * table: strerror() is not thread-safe, glibc's strerrordesc_np only exists
 * from glibc 2.32 on, and the wheels target glibc 2.28 and macOS.  The copy
 * comes from strerror_l() in the "C" locale where the C library has it
 * (glibc), else from the XSI strerror_r() (macOS, whose texts are not
 * translated).  Windows' C runtime only knows the classic codes (below
 * 43): the POSIX supplement of its errno.h (EADDRINUSE to EWOULDBLOCK,
 * which the library returns for socket errors) gets glibc's texts here.
 */
#undef _GNU_SOURCE /* the XSI strerror_r(), not the GNU one */
#define _POSIX_C_SOURCE 200809L
#ifdef __APPLE__
#  define _DARWIN_C_SOURCE 1
#endif
#include <errno.h>
#include <locale.h>
#include <string.h>
#if defined(BGL_HAVE_STRERROR_L) && defined(__APPLE__)
#  include <xlocale.h>
#endif

#include "bgloop/common.h"
#include "os.h"

/* Above every errno of Linux (133) and macOS (106). */
#define ERRNO_MAX 256
#define TEXT_POOL 16384

static const char *g_text[ERRNO_MAX];
static char g_pool[TEXT_POOL];
static bgli_once g_once = BGLI_ONCE_INIT;

static const char unknown[] = "Unknown error";

#ifdef _WIN32
static const struct { int err; const char *text; } posix_supplement[] = {
    {EADDRINUSE, "Address already in use"},
    {EADDRNOTAVAIL, "Cannot assign requested address"},
    {EAFNOSUPPORT, "Address family not supported by protocol"},
    {EALREADY, "Operation already in progress"},
    {EBADMSG, "Bad message"},
    {ECANCELED, "Operation canceled"},
    {ECONNABORTED, "Software caused connection abort"},
    {ECONNREFUSED, "Connection refused"},
    {ECONNRESET, "Connection reset by peer"},
    {EDESTADDRREQ, "Destination address required"},
    {EHOSTUNREACH, "No route to host"},
    {EIDRM, "Identifier removed"},
    {EINPROGRESS, "Operation now in progress"},
    {EISCONN, "Transport endpoint is already connected"},
    {ELOOP, "Too many levels of symbolic links"},
    {EMSGSIZE, "Message too long"},
    {ENETDOWN, "Network is down"},
    {ENETRESET, "Network dropped connection on reset"},
    {ENETUNREACH, "Network is unreachable"},
    {ENOBUFS, "No buffer space available"},
    {ENODATA, "No data available"},
    {ENOLINK, "Link has been severed"},
    {ENOMSG, "No message of desired type"},
    {ENOPROTOOPT, "Protocol not available"},
    {ENOSR, "Out of streams resources"},
    {ENOSTR, "Device not a stream"},
    {ENOTCONN, "Transport endpoint is not connected"},
    {ENOTRECOVERABLE, "State not recoverable"},
    {ENOTSOCK, "Socket operation on non-socket"},
    {ENOTSUP, "Operation not supported"},
    {EOPNOTSUPP, "Operation not supported on socket"},
    {EOVERFLOW, "Value too large for defined data type"},
    {EOWNERDEAD, "Owner died"},
    {EPROTO, "Protocol error"},
    {EPROTONOSUPPORT, "Protocol not supported"},
    {EPROTOTYPE, "Protocol wrong type for socket"},
    {ETIME, "Timer expired"},
    {ETIMEDOUT, "Connection timed out"},
    {ETXTBSY, "Text file busy"},
    {EWOULDBLOCK, "Operation would block"},
};

static int describe(int err, char *buf, size_t size, void *locale)
{
    (void)locale;
    const char *s = NULL;
    for (size_t i = 0; i < sizeof posix_supplement / sizeof posix_supplement[0]; i++)
        if (posix_supplement[i].err == err)
            s = posix_supplement[i].text;
    /* Only fill_table() calls strerror(), once. */
    if (!s && err < 100)
        s = strerror(err);
    if (!s || strncmp(s, unknown, sizeof unknown - 1) == 0 || strlen(s) >= size)
        return 0;
    memcpy(buf, s, strlen(s) + 1);
    return 1;
}
#else
/* The C library's text for err into buf, or 0 if it names no such errno. */
static int describe(int err, char *buf, size_t size, void *locale)
{
#ifdef BGL_HAVE_STRERROR_L
    const char *s = strerror_l(err, (locale_t)locale);
    /* glibc formats "Unknown error N" for a number it has no text for. */
    if (!s || strncmp(s, unknown, sizeof unknown - 1) == 0 || strlen(s) >= size)
        return 0;
    memcpy(buf, s, strlen(s) + 1);
    return 1;
#else
    (void)locale;
    return strerror_r(err, buf, size) == 0 && strncmp(buf, unknown, sizeof unknown - 1) != 0;
#endif
}
#endif

static void fill_table(void)
{
    void *locale = NULL;
#ifdef BGL_HAVE_STRERROR_L
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c)
        return;
    locale = c;
#endif
    size_t used = 0;
    for (int err = 1; err < ERRNO_MAX && used < TEXT_POOL; err++) {
        char *buf = g_pool + used;
        if (describe(err, buf, TEXT_POOL - used, locale)) {
            g_text[err] = buf;
            used += strlen(buf) + 1;
        }
    }
#ifdef BGL_HAVE_STRERROR_L
    freelocale(c);
#endif
}

const char *bgl_strerror(int err)
{
    if (err == 0)
        return "Success";
    if (err < 0) {
        if (err == -2147483647 - 1)
            return unknown;
        err = -err;
    }
    if (err >= ERRNO_MAX)
        return unknown;
    bgli_once_run(&g_once, fill_table);
    return g_text[err] ? g_text[err] : unknown;
}
