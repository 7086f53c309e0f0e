/* stream_data.h - received bytes to a protocol (transport.c's data path).
 *
 * asyncio.start_server()/open_connection() put a StreamReaderProtocol over a
 * StreamReader on every connection.  For exactly those classes, with their
 * data-path methods still asyncio's own, the bytes go straight into the
 * reader's buffer by the same steps as those methods (stream_data.c);
 * every other protocol gets protocol.data_received(bytes).
 */
#ifndef BGLPY_STREAM_DATA_H
#define BGLPY_STREAM_DATA_H

#include "bglpy.h"

/* Deliver n > 0 bytes at buf to protocol as data_received() would.
 * *direct is the caller's memo for this protocol: 0 before the first call
 * (and after the protocol changes), then kept as this sets it.  0, or -1
 * with the exception data_received() would have raised. */
int bglpy_data_received(bglpy_state *st, PyObject *protocol, signed char *direct,
                        const char *buf, Py_ssize_t n);

#endif /* BGLPY_STREAM_DATA_H */
