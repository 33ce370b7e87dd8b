/**
 * The Defender client's request path when no `fetch` is injected and no proxy applies: `node:http(s)` on a
 * keep-alive Agent. Measured (issue 25), `fetch` cost ~0.9 ms CPU for the two requests of a write, 2.7–3×
 * this path, and a fresh AbortController per request left AbortSignals held by undici's finalizer. So here:
 * no AbortController; the timeout is a timer that destroys the request, the caller's cancellation a
 * listener removed once the answer is in. An answer cut short (`!res.complete`) is a connection reset.
 * TLS is Node's default (system CAs plus NODE_EXTRA_CA_CERTS), as for `fetch`.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface WireAnswer {
  status: number;
  header(name: string): string | null;
  text: string;
}

/** Why a request failed: the underlying error, and whether our own timer or the caller's signal ended it. */
export class WireFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly timedOut: boolean,
    readonly cancelled: boolean,
    /** Failed on a kept-alive socket before any answer: the server had closed it. */
    readonly reused = false,
  ) {
    super((error as Error)?.message ?? String(error));
  }
}

// Idle sockets are closed after 4 s, below the common 5 s server keep-alive, so a request rarely meets a
// socket the other side is closing. Sockets per host are bounded like undici's default pool (unbounded):
// the call budget already bounds what is in flight.
const FREE_SOCKET_MS = 4_000;
const httpAgent = new HttpAgent({ keepAlive: true, timeout: FREE_SOCKET_MS, scheduling: 'lifo' });
const httpsAgent = new HttpsAgent({ keepAlive: true, timeout: FREE_SOCKET_MS, scheduling: 'lifo' });

export interface WireRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** One request; no retry here, as with fetch: a reset is the caller's to map (a write may have reached the API). */
export function wireRequest(r: WireRequest): Promise<WireAnswer> {
  return new Promise<WireAnswer>((resolve, reject) => {
    const https = r.url.protocol === 'https:';
    const headers: Record<string, string | number> = { ...r.headers };
    if (r.body !== undefined) headers['Content-Length'] = Buffer.byteLength(r.body);
    const req = (https ? httpsRequest : httpRequest)(r.url, {
      method: r.method,
      headers,
      agent: https ? httpsAgent : httpAgent,
    });
    let timedOut = false;
    let cancelled = false;
    let answered = false;
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      r.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (error: unknown) =>
      finish(() => {
        const reused = !answered && !timedOut && !cancelled && req.reusedSocket && isReset(error);
        reject(new WireFailure(error, timedOut, cancelled, reused));
      });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error(`no answer within ${r.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, r.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      req.destroy(Object.assign(new Error('cancelled'), { code: 'ABORT_ERR' }));
    };
    r.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', fail);
      res.on('aborted', () => fail(resetError()));
      res.on('close', () => {
        if (!res.complete) return fail(resetError());
        finish(() =>
          resolve({
            status: res.statusCode ?? 0,
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            text,
          }),
        );
      });
    });
    req.end(r.body);
  });
}

const resetError = () => Object.assign(new Error('the connection closed before the whole answer arrived'), { code: 'ECONNRESET' });
const isReset = (error: unknown) => ['ECONNRESET', 'EPIPE'].includes((error as { code?: string })?.code ?? '');
