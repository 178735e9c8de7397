import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Makes `server.close()` also close the connections that never carried a request.
 *
 * Node's `close()` stops accepting and closes the idle keep-alive connections, then waits for the
 * rest to end; a connection a client opened ahead of need and never used (browsers open such
 * sockets, "preconnects") counts as busy, so a stop waited until the client gave it up: about a
 * minute for Chromium, with the web console open. A connection that carried a request is left to
 * Node (drained, or closed when idle); a WebSocket upgrade belongs to the live feed, which closes
 * its sockets with a close frame.
 */
export function closeUnusedSocketsOnClose(server: Server): void {
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  const used = (socket: Socket): void => {
    unused.delete(socket);
  };
  server.on('request', (request: { socket: Socket }) => {
    used(request.socket);
  });
  server.on('upgrade', (request: { socket: Socket }) => {
    used(request.socket);
  });
  const close = server.close.bind(server);
  server.close = (callback?: (error?: Error) => void): Server => {
    close(callback); // first: no new connection is accepted from here on
    for (const socket of unused) socket.destroy();
    unused.clear();
    return server;
  };
}
