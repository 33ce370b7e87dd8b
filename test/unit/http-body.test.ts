/**
 * The bounded JSON body reader and the JSON answers of remote mode, over real node:http servers on
 * 127.0.0.1 and real sockets: declared and undeclared sizes around the limit, aborted requests,
 * invalid JSON, and the headers and bodies of sendJson / sendJsonRpcError.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, readJsonBody, sendJson, sendJsonRpcError, type BodyResult } from '../../src/http/edge.js';

const servers: http.Server[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const srv of servers.splice(0)) {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

/** Fails fast instead of hanging when a result never comes. */
function within<T>(p: Promise<T>, ms = 2_000, what = 'result'): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms).unref())]);
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const srv = http.createServer(handler);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as AddressInfo).port;
}

/** A server that reads one body per request and answers with what it read. */
async function bodyServer(limit?: number, onRequest?: (req: IncomingMessage) => void) {
  const results: BodyResult[] = [];
  const waiters: ((r: BodyResult) => void)[] = [];
  const port = await listen(async (req, res) => {
    onRequest?.(req);
    const r = limit === undefined ? await readJsonBody(req) : await readJsonBody(req, limit);
    const waiter = waiters.shift();
    if (waiter) waiter(r);
    else results.push(r);
    if (r.kind === 'too_large') sendJsonRpcError(res, 413, -32000, 'Request body too large.', { Connection: 'close' });
    else if (r.kind === 'invalid_json') sendJsonRpcError(res, 400, -32700, 'Parse error.');
    else if (r.kind === 'ok') sendJson(res, 200, { echo: r.value });
  });
  const next = () => (results.length > 0 ? Promise.resolve(results.shift()!) : new Promise<BodyResult>((r) => waiters.push(r)));
  return { port, next: (ms?: number) => within(next(), ms, 'body result') };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}

/** Everything the server sends back until it closes the connection. */
function readAll(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
  });
}

function head(opts: { length?: number; chunked?: boolean }): string {
  return (
    'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n' +
    (opts.length !== undefined ? `Content-Length: ${opts.length}\r\n` : '') +
    (opts.chunked ? 'Transfer-Encoding: chunked\r\n' : '') +
    '\r\n'
  );
}

/** The body of a raw HTTP/1.1 answer, chunked or not. */
function bodyOf(raw: string): string {
  const [headers, rest] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
  if (!/\r\nTransfer-Encoding: chunked\r\n/i.test(headers + '\r\n')) return rest;
  let out = '';
  let i = 0;
  for (;;) {
    const eol = rest.indexOf('\r\n', i);
    const n = parseInt(rest.slice(i, eol), 16);
    if (!n) return out;
    out += rest.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
}

const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

/** A JSON string literal of exactly n bytes. */
const jsonOfSize = (n: number) => JSON.stringify('x'.repeat(n - 2));

describe('readJsonBody over real requests', () => {
  it('reads a JSON body and sendJson answers it', async () => {
    const srv = await bodyServer(64);
    const res = await fetch(`http://127.0.0.1:${srv.port}/`, { method: 'POST', body: '{"jsonrpc":"2.0","id":1}' });
    expect(await srv.next()).toEqual({ kind: 'ok', value: { jsonrpc: '2.0', id: 1 } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ echo: { jsonrpc: '2.0', id: 1 } });
  });

  it('accepts a body of exactly the limit, declared or not', async () => {
    const srv = await bodyServer(64);
    const body = jsonOfSize(64);
    expect(Buffer.byteLength(body)).toBe(64);

    const s1 = await connect(srv.port);
    const answer1 = readAll(s1);
    s1.write(head({ length: 64 }) + body);
    expect(await srv.next()).toEqual({ kind: 'ok', value: 'x'.repeat(62) });
    expect(await within(answer1)).toMatch(/^HTTP\/1\.1 200 /);

    const s2 = await connect(srv.port);
    s2.write(head({ chunked: true }) + chunk(body.slice(0, 30)) + chunk(body.slice(30)) + '0\r\n\r\n');
    expect(await srv.next()).toEqual({ kind: 'ok', value: 'x'.repeat(62) });
  });

  it('refuses a declared Content-Length over the limit at once, without waiting for the body', async () => {
    const srv = await bodyServer(64);
    const s = await connect(srv.port);
    const answer = readAll(s);
    s.write(head({ length: 65 })); // headers only: the body never comes
    expect(await srv.next()).toEqual({ kind: 'too_large' });
    const text = await within(answer, 2_000, 'answer');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toMatch(/\r\nContent-Type: application\/json\r\n/i);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    expect(JSON.parse(bodyOf(text))).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: 'Request body too large.' }, id: null });
  });

  it('stops reading a body without Content-Length as soon as it grows past the limit', async () => {
    const srv = await bodyServer(64);
    const s = await connect(srv.port);
    s.write(head({ chunked: true }) + chunk('"' + 'x'.repeat(39)));
    await new Promise((r) => setTimeout(r, 20));
    s.write(chunk('x'.repeat(25))); // 65 bytes so far; the body is not finished
    expect(await srv.next()).toEqual({ kind: 'too_large' });
  });

  it('refuses a body one byte over the limit even when it would end right after', async () => {
    const srv = await bodyServer(64);
    const s = await connect(srv.port);
    s.write(head({ chunked: true }) + chunk(jsonOfSize(65)) + '0\r\n\r\n');
    expect(await srv.next()).toEqual({ kind: 'too_large' });
  });

  it('uses 1 MiB by default: exactly 1 MiB passes, one byte more is refused, declared or not', async () => {
    expect(MAX_BODY_BYTES).toBe(1_048_576);
    const srv = await bodyServer();

    const s1 = await connect(srv.port);
    s1.write(head({ length: MAX_BODY_BYTES }) + jsonOfSize(MAX_BODY_BYTES));
    const ok = await srv.next(5_000);
    expect(ok.kind).toBe('ok');
    expect(ok.kind === 'ok' && ok.value === 'x'.repeat(MAX_BODY_BYTES - 2)).toBe(true);

    const s2 = await connect(srv.port);
    s2.write(head({ length: MAX_BODY_BYTES + 1 }));
    expect((await srv.next()).kind).toBe('too_large');

    const s3 = await connect(srv.port);
    s3.write(head({ chunked: true }) + chunk(jsonOfSize(MAX_BODY_BYTES + 1)));
    expect((await srv.next(5_000)).kind).toBe('too_large');
  });

  it('reports invalid JSON (and an empty body) as invalid_json, answered with a parse error', async () => {
    const srv = await bodyServer(64);
    const res = await fetch(`http://127.0.0.1:${srv.port}/`, { method: 'POST', body: '{"jsonrpc":' });
    expect(await srv.next()).toEqual({ kind: 'invalid_json' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error.' }, id: null });

    await fetch(`http://127.0.0.1:${srv.port}/`, { method: 'POST', body: '' });
    expect(await srv.next()).toEqual({ kind: 'invalid_json' });
  });

  it('reports a client that disconnects mid-body as aborted', async () => {
    const srv = await bodyServer(64);
    const s = await connect(srv.port);
    s.write(head({ length: 40 }) + '{"jsonrpc":');
    await new Promise((r) => setTimeout(r, 20));
    s.destroy();
    expect(await srv.next()).toEqual({ kind: 'aborted' });
  });

  it('reports a request the server destroys (no error event) as aborted', async () => {
    let destroy: (() => void) | undefined;
    const srv = await bodyServer(64, (req) => {
      destroy = () => req.destroy();
    });
    const s = await connect(srv.port);
    s.write(head({ length: 40 }) + '{"jsonrpc":');
    await new Promise((r) => setTimeout(r, 20));
    destroy!();
    expect(await srv.next()).toEqual({ kind: 'aborted' });
  });
});

describe('sendJson and sendJsonRpcError', () => {
  it('sendJson: status, JSON content type, no-store, the body as JSON', async () => {
    const port = await listen((_req, res) => sendJson(res, 201, { status: 'ok', n: [1, 2] }));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok', n: [1, 2] });
  });

  it('sendJson: extra headers are added and may override the defaults', async () => {
    const port = await listen((_req, res) => sendJson(res, 200, { a: 1 }, { 'Cache-Control': 'max-age=3600', 'Access-Control-Allow-Origin': 'https://x.example' }));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('max-age=3600');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://x.example');
  });

  it('sendJsonRpcError: status, JSON content type, a JSON-RPC 2.0 error with id null, extra headers', async () => {
    const port = await listen((_req, res) => sendJsonRpcError(res, 405, -32000, 'Method not allowed.', { Allow: 'GET, POST, DELETE' }));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
    expect(await res.json()).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  });

  it('both do nothing once an answer has started (no throw, the first answer stands)', async () => {
    const thrown: unknown[] = [];
    const port = await listen((_req, res) => {
      res.writeHead(202, { 'Content-Type': 'text/plain' });
      res.write('first');
      try {
        sendJson(res, 500, { error: 'late' });
        sendJsonRpcError(res, 500, -32603, 'late');
      } catch (e) {
        thrown.push(e);
      }
      res.end();
    });
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('first');
    expect(thrown).toEqual([]);
  });

  it('sendJsonRpcError alone does nothing once an answer has started', async () => {
    const thrown: unknown[] = [];
    const port = await listen((_req, res) => {
      sendJson(res, 200, { first: true });
      try {
        sendJsonRpcError(res, 500, -32603, 'late');
      } catch (e) {
        thrown.push(e);
      }
    });
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ first: true });
    expect(thrown).toEqual([]);
  });
});
