/**
 * The network edge of remote mode, as pure helpers: which Host and Origin headers are acceptable (DNS
 * rebinding, browsers), the bounded body reader (1 MiB), and the JSON-RPC error bodies the SDK's
 * transport also uses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_BODY_BYTES = 1024 * 1024;

import { isLoopbackHost } from '../net/hosts.js';

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The host name of a Host header, without the port, lower case; IPv6 keeps its brackets. */
export function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.replace(/:\d+$/, '');
}

/** Bracket an IPv6 literal for use in a URL or a Host header. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Host names a request may name: the bind address (unless a wildcard), the resource URL's host, the
 * loopback names when bound to loopback, and any the operator allows.
 */
export function allowedHostnames(opts: { bindHost: string; resourceUrl: string; extra: readonly string[] }): Set<string> {
  const names = new Set<string>();
  if (!isWildcardHost(opts.bindHost)) names.add(urlHost(opts.bindHost).toLowerCase());
  if (isLoopbackHost(opts.bindHost)) for (const n of ['localhost', '127.0.0.1', '[::1]']) names.add(n);
  names.add(new URL(opts.resourceUrl).hostname.toLowerCase());
  for (const h of opts.extra) names.add(hostnameOf(h));
  return names;
}

/** An Origin is acceptable when absent (not a browser) or listed exactly (scheme, host and port). */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  const normalized = normalizeOrigin(origin);
  return normalized !== undefined && allowed.some((a) => normalizeOrigin(a) === normalized);
}

export function normalizeOrigin(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    if (u.origin === 'null') return undefined;
    return u.origin.toLowerCase();
  } catch {
    return undefined;
  }
}

export type BodyResult = { kind: 'ok'; value: unknown } | { kind: 'too_large' } | { kind: 'invalid_json' } | { kind: 'aborted' };

/** Read a JSON body of at most `limit` bytes; stops reading (and reports) as soon as it is exceeded. */
export function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ kind: 'too_large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult) => {
      if (done) return;
      done = true;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; the rest of the body is drained and dropped.
        chunks.length = 0;
        finish({ kind: 'too_large' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      try {
        finish({ kind: 'ok', value: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      } catch {
        finish({ kind: 'invalid_json' });
      }
    });
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => finish({ kind: 'aborted' }));
  });
}

/** A JSON-RPC error answer, the shape the SDK's transport uses for its own refusals. */
export function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
