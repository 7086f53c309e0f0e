/* os-win.c - Windows helpers: Winsock errors as errno values, Winsock's
 * start-up, and the loopback socket pair that stands in for a pipe. */
#ifdef _WIN32

#include <errno.h>

#include "loop-internal.h"

int bgli_wsa_errno(int e)
{
    switch (e) {
    case 0: return 0;
    case WSAEINTR: return EINTR;
    case WSAEBADF: case WSAENOTSOCK: return EBADF;
    case WSAEACCES: return EACCES;
    case WSAEFAULT: return EFAULT;
    case WSAEINVAL: return EINVAL;
    case WSAEMFILE: return EMFILE;
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINPROGRESS: return EINPROGRESS;
    case WSAEALREADY: return EALREADY;
    case WSAEDESTADDRREQ: return EDESTADDRREQ;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAEPROTOTYPE: return EPROTOTYPE;
    case WSAENOPROTOOPT: return ENOPROTOOPT;
    case WSAEPROTONOSUPPORT: return EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAENETDOWN: return ENETDOWN;
    case WSAENETUNREACH: return ENETUNREACH;
    case WSAENETRESET: return ENETRESET;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNRESET: return ECONNRESET;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEISCONN: return EISCONN;
    case WSAENOTCONN: return ENOTCONN;
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case WSAENAMETOOLONG: return ENAMETOOLONG;
    case WSANOTINITIALISED: return ENOTSUP;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_INVALID_HANDLE: return EBADF;
    case ERROR_ACCESS_DENIED: return EACCES;
    case ERROR_INVALID_PARAMETER: return EINVAL;
    case ERROR_NOT_SUPPORTED: return ENOTSUP;
    default: return EIO;
    }
}

static bgli_mutex g_wsa_lock = BGLI_MUTEX_INIT;
static unsigned g_wsa_users;

int bgli_winsock_up(void)
{
    int r = 0;
    bgli_mutex_lock(&g_wsa_lock);
    if (g_wsa_users == 0) {
        WSADATA data;
        int e = WSAStartup(MAKEWORD(2, 2), &data);
        if (e)
            r = -bgli_wsa_errno(e);
    }
    if (r == 0)
        g_wsa_users++;
    bgli_mutex_unlock(&g_wsa_lock);
    return r;
}

void bgli_winsock_down(void)
{
    bgli_mutex_lock(&g_wsa_lock);
    if (g_wsa_users && --g_wsa_users == 0)
        WSACleanup();
    bgli_mutex_unlock(&g_wsa_lock);
}

static SOCKET tcp_socket(void)
{
    return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
}

static int same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

int bgli_socketpair_nonblock(bgl_fd fds[2])
{
    SOCKET lst = tcp_socket(), a = INVALID_SOCKET, b = INVALID_SOCKET;
    struct sockaddr_in addr = {0}, local, peer;
    int len = sizeof addr, r = 0;
    u_long one = 1;
    if (lst == INVALID_SOCKET)
        return bgli_wsa_err();
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lst, (struct sockaddr *)&addr, sizeof addr) || listen(lst, 1) ||
        getsockname(lst, (struct sockaddr *)&addr, &len))
        goto fail;
    if ((a = tcp_socket()) == INVALID_SOCKET ||
        connect(a, (struct sockaddr *)&addr, sizeof addr))
        goto fail;
    if ((b = accept(lst, NULL, NULL)) == INVALID_SOCKET)
        goto fail;
    /* Another local process may have connected to the listener first:
     * the accepted socket must be the peer of ours. */
    len = sizeof local;
    if (getsockname(a, (struct sockaddr *)&local, &len))
        goto fail;
    len = sizeof peer;
    if (getpeername(b, (struct sockaddr *)&peer, &len))
        goto fail;
    if (!same_addr(&local, &peer)) {
        r = -ECONNREFUSED;
        goto fail;
    }
    SetHandleInformation((HANDLE)b, HANDLE_FLAG_INHERIT, 0);
    /* Wakeups are single bytes: send them at once. */
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    if (ioctlsocket(a, FIONBIO, &one) || ioctlsocket(b, FIONBIO, &one))
        goto fail;
    closesocket(lst);
    fds[0] = b;
    fds[1] = a;
    return 0;

fail:
    if (r == 0)
        r = bgli_wsa_err();
    closesocket(lst);
    if (a != INVALID_SOCKET)
        closesocket(a);
    if (b != INVALID_SOCKET)
        closesocket(b);
    return r;
}

#endif /* _WIN32 */
