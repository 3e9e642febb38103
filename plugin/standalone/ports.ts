import net from 'node:net';

/**
 * The port a server of the console takes: its default when free, else one the system gives, said in `notice`, so
 * that a second console (or a test's) on the same machine starts instead of failing on a taken port.
 */
export async function portOrFree(preferred: number, host: string, what: string, notice: (m: string) => void): Promise<number> {
  if (preferred === 0) return 0;
  try {
    await listenOnce(preferred, host);
    return preferred;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
    const port = await listenOnce(0, host);
    notice(`${what}: port ${preferred} is taken, using port ${port} instead`);
    return port;
  }
}

/** Binds and releases a port: resolves with the port bound, fails when it cannot be bound. */
function listenOnce(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => {
      const bound = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(bound));
    });
  });
}
