/**
 * A CONNECT proxy on loopback, as a corporate proxy behaves: it opens a TCP tunnel to the requested
 * host:port (loopback only, like everything in the tests) or refuses with a status. It records every
 * CONNECT it receives, with its Proxy-Authorization header.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ConnectRecord {
  target: string;
  proxyAuthorization: string | undefined;
}

export async function startConnectProxy(opts: { refuseWith?: number } = {}) {
  const connects: ConnectRecord[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => {
    res.writeHead(405).end('this test proxy only tunnels (CONNECT)');
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const target = req.url ?? '';
    connects.push({ target, proxyAuthorization: req.headers['proxy-authorization'] });
    if (opts.refuseWith) {
      const reason = opts.refuseWith === 407 ? 'Proxy Authentication Required' : 'Forbidden';
      client.end(`HTTP/1.1 ${opts.refuseWith} ${reason}\r\n${opts.refuseWith === 407 ? 'Proxy-Authenticate: Basic realm="corp"\r\n' : ''}Content-Length: 0\r\n\r\n`);
      return;
    }
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const upstream = connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
