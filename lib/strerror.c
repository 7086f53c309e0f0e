/* strerror.c - error text for the negative errno values the library returns. */
#include <errno.h>
#include <string.h>

#include "bgloop/common.h"

const char *bgl_strerror(int err)
{
    if (err == 0)
        return "Success";
    if (err < 0) {
        if (err == -2147483647 - 1)
            return "Unknown error";
        err = -err;
    }
    /* strerror() is not thread-safe in general; glibc's strerrordesc_np and
     * the C library tables it reads are, and are static. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *s = strerrordesc_np(err);
    return s ? s : "Unknown error";
#else
    switch (err) {
    case EINVAL: return "Invalid argument";
    case EBADF: return "Bad file descriptor";
    case EEXIST: return "File exists";
    case EBUSY: return "Device or resource busy";
    case ENOMEM: return "Cannot allocate memory";
    case ECANCELED: return "Operation canceled";
    case ENOENT: return "No such file or directory";
    case EPERM: return "Operation not permitted";
    case EALREADY: return "Operation already in progress";
    case EOPNOTSUPP: return "Operation not supported";
    case EMFILE: return "Too many open files";
    case ENFILE: return "Too many open files in system";
    case EAGAIN: return "Resource temporarily unavailable";
    case EINTR: return "Interrupted system call";
    default: return "Unknown error";
    }
#endif
}
