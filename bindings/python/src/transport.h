/* transport.h - the C socket transport behind bgloop.Loop's TCP and Unix
 * stream connections.
 *
 * bgloop._bgloop.SocketTransport holds what runs per byte: the fd watcher,
 * receiving into the module's reusable buffer and handing the data to the
 * protocol, sending at once and queueing only what the kernel did not take,
 * flow control, close/abort/write_eof.  bgloop.loop._SocketTransport (Python)
 * subclasses it for what runs once per connection: construction
 * (connection_made through call_soon), get_extra_info, repr, the sendfile
 * hooks, _fatal_error and _call_connection_lost, so those read exactly as
 * asyncio's _SelectorSocketTransport.
 *
 * It is created by _bgloop.socket_transport(cls, core, loop, sock, protocol,
 * buffered); the class' own constructor refuses to make one.
 */
#ifndef BGLPY_TRANSPORT_H
#define BGLPY_TRANSPORT_H

#include "core.h"

/* asyncio's _SelectorTransport.max_size: the most one recv() takes. */
#define BGLPY_RECV_MAX (256 * 1024)

int bglpy_transport_init(PyObject *module, bglpy_state *st);

#endif /* BGLPY_TRANSPORT_H */
