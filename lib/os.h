/* os.h - what the library needs from the operating system, for POSIX and
 * Windows alike: locks, one-time initialisation, and the read, write and
 * close of the loop's internal descriptors (pipes or eventfd on POSIX,
 * loopback socket pairs on Windows, which has no pollable pipe).
 * Shared by the files of lib/ only; never installed. */
#ifndef BGL_OS_H
#define BGL_OS_H

#include <errno.h>
#include <stddef.h>

#include "bgloop/loop.h"
#include "internal.h"

#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#  include <windows.h>
#  include <signal.h>
#  include <sys/types.h>
#else
#  include <pthread.h>
#  include <signal.h>
#  include <unistd.h>
#endif

#ifdef _WIN32

/* Slim reader/writer locks: statically initialisable, no teardown, no
 * dependency on a pthread DLL. */
typedef SRWLOCK bgli_mutex;
#define BGLI_MUTEX_INIT SRWLOCK_INIT
static inline int bgli_mutex_init(bgli_mutex *m) { InitializeSRWLock(m); return 0; }
static inline void bgli_mutex_destroy(bgli_mutex *m) { (void)m; }
static inline void bgli_mutex_lock(bgli_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void bgli_mutex_unlock(bgli_mutex *m) { ReleaseSRWLockExclusive(m); }

typedef INIT_ONCE bgli_once;
#define BGLI_ONCE_INIT INIT_ONCE_STATIC_INIT
static BOOL CALLBACK bgli_once_trampoline(PINIT_ONCE once, PVOID fn, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    ((void (*)(void))fn)();
    return TRUE;
}
static inline void bgli_once_run(bgli_once *once, void (*fn)(void))
{
    InitOnceExecuteOnce(once, bgli_once_trampoline, (PVOID)fn, NULL);
}

/* A Winsock error as a positive errno value. */
BGL_INTERNAL int bgli_wsa_errno(int wsa_error);
/* The last Winsock error as a negative errno value. */
static inline int bgli_wsa_err(void) { return -bgli_wsa_errno(WSAGetLastError()); }
/* A connected pair of non-blocking, non-inheritable loopback TCP sockets:
 * the self-pipe of the WSAPoll backend.  0 or a negative errno. */
BGL_INTERNAL int bgli_socketpair_nonblock(bgl_fd fds[2]);
/* Winsock for the life of a loop (WSAStartup / WSACleanup, counted). */
BGL_INTERNAL int bgli_winsock_up(void);
BGL_INTERNAL void bgli_winsock_down(void);

/* Internal descriptors are sockets: recv/send/closesocket, errno set. */
static inline ptrdiff_t bgli_fd_read(bgl_fd fd, void *buf, size_t n)
{
    int r = recv(fd, (char *)buf, (int)n, 0);
    if (r == SOCKET_ERROR)
        errno = bgli_wsa_errno(WSAGetLastError());
    return r;
}
static inline ptrdiff_t bgli_fd_write(bgl_fd fd, const void *buf, size_t n)
{
    int r = send(fd, (const char *)buf, (int)n, 0);
    if (r == SOCKET_ERROR)
        errno = bgli_wsa_errno(WSAGetLastError());
    return r;
}
static inline void bgli_fd_close(bgl_fd fd) { closesocket(fd); }

/* Socket handles are multiples of 4 (the low two bits of a kernel handle
 * are ignored): the watcher table is indexed by handle / 4. */
static inline size_t bgli_fd_index(bgl_fd fd) { return (size_t)(fd >> 2); }

#else /* POSIX */

typedef pthread_mutex_t bgli_mutex;
#define BGLI_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static inline int bgli_mutex_init(bgli_mutex *m) { return -pthread_mutex_init(m, NULL); }
static inline void bgli_mutex_destroy(bgli_mutex *m) { pthread_mutex_destroy(m); }
static inline void bgli_mutex_lock(bgli_mutex *m) { pthread_mutex_lock(m); }
static inline void bgli_mutex_unlock(bgli_mutex *m) { pthread_mutex_unlock(m); }

typedef pthread_once_t bgli_once;
#define BGLI_ONCE_INIT PTHREAD_ONCE_INIT
static inline void bgli_once_run(bgli_once *once, void (*fn)(void)) { pthread_once(once, fn); }

static inline ptrdiff_t bgli_fd_read(bgl_fd fd, void *buf, size_t n) { return read(fd, buf, n); }
static inline ptrdiff_t bgli_fd_write(bgl_fd fd, const void *buf, size_t n)
{
    return write(fd, buf, n);
}
static inline void bgli_fd_close(bgl_fd fd) { close(fd); }
static inline size_t bgli_fd_index(bgl_fd fd) { return (size_t)fd; }

#endif

#endif /* BGL_OS_H */
