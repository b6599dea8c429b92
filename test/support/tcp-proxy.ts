/**
 * A TCP proxy in front of PostgreSQL that can simulate its restart: `cut()` resets every open
 * connection and refuses new ones, as a stopped server does; `restore()` accepts them again. What
 * the API process sees (ECONNRESET on live connections, idle clients erroring, ECONNREFUSED on
 * connect) is what a real restart gives it, without stopping the PostgreSQL other tests share.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a connection string leads, as a socket address: the Unix socket when its `host` names a
 * folder (the embedded cluster), else host and port.
 */
function socketAddressOf(connectionString: string): net.NetConnectOpts {
  const url = new URL(connectionString);
  const port = Number(url.port || 5432);
  const host = url.searchParams.get('host') ?? url.hostname;
  return host.startsWith('/') ? { path: `${host}/.s.PGSQL.${port}` } : { host, port };
}

/** The same database, reached through the proxy over TCP. */
export function throughProxy(connectionString: string, proxy: TcpProxy): string {
  const url = new URL(connectionString);
  url.searchParams.delete('host');
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

/** A proxy in front of the PostgreSQL that `connectionString` leads to. */
export async function startTcpProxy(connectionString: string): Promise<TcpProxy> {
  const target = socketAddressOf(connectionString);
  const sockets = new Set<net.Socket>();
  const createServer = () =>
    net.createServer((client) => {
      const upstream = net.connect(target);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  let server = createServer();
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen(0);
  const stop = () =>
    new Promise<void>((resolve) => {
      // A reset, as a stopped server gives, on TCP; a Unix socket (the embedded cluster's) can only close.
      for (const socket of sockets) socket.remoteFamily ? socket.resetAndDestroy() : socket.destroy();
      sockets.clear();
      server.close(() => resolve());
    });
  return {
    port,
    cut: stop,
    restore: async () => {
      server = createServer();
      await listen(port);
    },
    close: stop,
  };
}
