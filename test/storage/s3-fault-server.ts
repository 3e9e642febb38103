import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the faulty server does with one request: pass it to the real server, answer an S3 error, never
 * answer, or pass it on but cut the connection after the first bytes of the response's body.
 */
export type FaultAnswer = 'forward' | 'hang' | { status: number; code: string } | { cutAfter: number };

export interface FaultServer {
  endpoint: string;
  /** Requests received so far. */
  readonly requests: number;
  /** Most requests in flight at once. */
  readonly maxInFlight: number;
  stop(): Promise<void>;
}

/**
 * A loopback HTTP server in front of a real S3 server, for the failures s3rver cannot produce (503,
 * throttling, a bare 403, silence): each request gets the answer `decide` gives for it.
 */
export async function startFaultServer(upstream: string | undefined, decide: (n: number, req: IncomingMessage) => FaultAnswer): Promise<FaultServer> {
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const n = ++requests;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const answer = decide(n, req);
    if (answer === 'hang') {
      hanging.add(res);
      req.resume();
      return;
    }
    if (answer !== 'forward' && 'status' in answer) {
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code><Message>injected by the test</Message><RequestId>t${n}</RequestId></Error>`;
      res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      // A HEAD answer has no body, as on S3.
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const up = new URL(upstream!);
    // Headers go through unchanged (Host included): the request's signature covers them.
    const cutAfter = answer === 'forward' ? Infinity : answer.cutAfter;
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (cutAfter === Infinity) return void upRes.pipe(res);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= cutAfter) return;
        res.write(chunk.subarray(0, cutAfter - sent));
        sent += Math.min(chunk.length, cutAfter - sent);
        if (sent >= cutAfter) res.destroy();
      });
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    stop: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
