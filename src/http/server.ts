/**
 * Remote mode: MCP Streamable HTTP on node:http(s), one stateful SDK transport and MCP server per
 * session. Every request passes, in order: Host (DNS rebinding) → Origin (browsers) → route → declared
 * body size → bearer token (401/403) → session ownership → bounded body read → the SDK transport.
 * Health probes answer without auth and reveal nothing. Loaded only with `--transport http`.
 */
import { createDrain } from './drain.js';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { principalKey, type Caller } from '../auth/caller.js';
import { BearerError } from '../auth/entra-jwt.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { isLoopbackHost } from '../net/hosts.js';
import {
  MAX_BODY_BYTES,
  allowedHostnames,
  hostnameOf,
  isWildcardHost,
  normalizeOrigin,
  originAllowed,
  readJsonBody,
  sendJson,
  sendJsonRpcError,
  urlHost,
} from './edge.js';
import { SessionManager } from './sessions.js';

export const MCP_PATH = '/mcp';
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;

/** How requests are authenticated: Entra bearer tokens, or nobody (loopback only). */
export type HttpAuth =
  | {
      kind: 'entra';
      verify(authorizationHeader: string | undefined): Promise<Caller>;
      /** `<authority host>/<tenant>/v2.0` */
      authorizationServer: string;
      /** The full scope clients request: `<App ID URI>/<scope>`. */
      scope: string;
      /** Keys cached or reachable. */
      ready(): Promise<boolean>;
    }
  | { kind: 'none' };

export interface HttpServerOptions {
  host: string;
  port: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The public URL of the endpoint; default `http(s)://<host>:<port>/mcp`, known after listen. */
  resourceUrl?: string;
  allowedOrigins: readonly string[];
  allowedHosts?: readonly string[];
  auth: HttpAuth;
  /** A fresh MCP server for a new session of this caller; `trackCall` keeps shutdown waiting for a tool call. */
  createMcpServer(caller: Caller, hooks: SessionHooks): McpServer;
  logger: Logger;
  sessionIdleMs?: number;
  maxSessionsPerUser?: number;
  maxBodyBytes?: number;
  /** Extra readiness checks (the shared store, when one is configured). */
  readiness?: () => Promise<boolean>;
  now?: () => number;
  /** Open sessions, and requests refused at sign-in. */
  metrics?: Metrics;
}

export interface SessionHooks {
  trackCall<T>(work: Promise<T>): Promise<T>;
}

export interface RunningHttpServer {
  /** `http(s)://<host>:<port>/mcp` as bound. */
  readonly url: string;
  readonly resourceUrl: string;
  readonly sessions: SessionManager<{ close(): Promise<void> }>;
  /** Requests in progress on /mcp (not counting open GET streams), and tool calls whose client went away. */
  inFlight(): number;
  /** Stop accepting, let calls in flight finish (up to graceMs), then close every session. */
  shutdown(graceMs?: number): Promise<{ drained: boolean }>;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const logger = opts.logger;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const sessions = new SessionManager<{ close(): Promise<void> }>({
    idleMs: opts.sessionIdleMs,
    maxPerOwner: opts.maxSessionsPerUser,
    now: opts.now,
    onIdleClose: (id) => logger.info(`Closed session ${id.slice(0, 8)}… after ${Math.round((opts.sessionIdleMs ?? sessions.idleMs) / 60_000)} min idle.`),
  });
  const metrics = opts.metrics ?? NO_METRICS;
  metrics.watchSessions(() => sessions.size);
  let draining = false;
  const drain = createDrain();
  const trackCall = drain.trackCall;

  // Known after listen (port 0).
  let resourceUrl = '';
  let metadataUrl = '';
  let hosts = new Set<string>();
  /** The listed origins plus the server's own (same-origin requests are not cross-site). */
  let allowedOrigins: string[] = [...opts.allowedOrigins];

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      logger.error(`HTTP: unexpected ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      sendJsonRpcError(res, 500, -32603, 'Internal server error');
    });
  };
  const server: Server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
  // Receiving a request (headers and a body of at most 1 MiB) must not take long; responses (SSE streams,
  // a confirmation prompt waiting for a human) are not bounded by these, but by the idle sweep and shutdown.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { error: 'bad_request' });
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';

    // Probes first: no auth, no Host check (orchestrators probe by pod address), nothing revealed.
    if (method === 'GET' && path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (method === 'GET' && path === '/readyz') {
      const ready = !draining && (await isReady());
      return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready' });
    }

    const hostHeader = req.headers.host;
    if (!hostHeader || !hosts.has(hostnameOf(hostHeader))) {
      return sendJsonRpcError(res, 403, -32000, 'Forbidden: the Host header does not name this server (set MDE_RESOURCE_URL or MDE_ALLOWED_HOSTS).');
    }
    const origin = req.headers.origin;
    if (!originAllowed(origin, allowedOrigins)) {
      return sendJsonRpcError(res, 403, -32000, 'Forbidden: this Origin is not allowed (MDE_ALLOWED_ORIGINS).');
    }
    const cors = origin ? corsHeaders(origin) : {};
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': 'GET, POST, DELETE',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID',
        'Access-Control-Max-Age': '600',
      });
      return void res.end();
    }

    if (opts.auth.kind === 'entra' && method === 'GET' && (path === '/.well-known/oauth-protected-resource' || path === `/.well-known/oauth-protected-resource${MCP_PATH}`)) {
      return sendJson(res, 200, protectedResourceMetadata(resourceUrl, opts.auth), { ...cors, 'Cache-Control': 'max-age=3600' });
    }
    if (path !== MCP_PATH) return sendJson(res, 404, { error: 'not_found' }, cors);
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return sendJsonRpcError(res, 405, -32000, 'Method not allowed.', { ...cors, Allow: 'GET, POST, DELETE' });
    }
    if (Number(req.headers['content-length']) > maxBody) {
      return sendJsonRpcError(res, 413, -32000, `Request body too large: at most ${maxBody} bytes.`, { ...cors, Connection: 'close' });
    }
    // Calls in flight hold up shutdown; an open GET stream is not a call and must not.
    const request = method !== 'GET' ? drain.begin((release) => res.once('close', release)) : undefined;

    let caller: Caller;
    try {
      caller = opts.auth.kind === 'entra' ? await opts.auth.verify(req.headers.authorization) : { kind: 'anonymous' };
    } catch (error) {
      if (!(error instanceof BearerError)) throw error;
      metrics.callerRefused(error.status, error.code ?? (error.status === 503 ? 'keys_unavailable' : 'no_token'));
      logger.info(`HTTP ${method} ${path}: refused (${error.status}): ${error.description}`);
      return sendJsonRpcError(res, error.status, -32001, error.description, { ...cors, ...(error.status === 503 ? { 'Retry-After': '10' } : { 'WWW-Authenticate': challenge(error) }) });
    }
    const owner = principalKey(caller);
    const authInfo: AuthInfo = {
      token: caller.kind === 'anonymous' ? '' : caller.token,
      clientId: caller.kind === 'app' ? caller.appId : '',
      scopes: opts.auth.kind === 'entra' ? [opts.auth.scope] : [],
      ...(caller.kind === 'anonymous' ? {} : { expiresAt: caller.expiresAt }),
      extra: { caller },
    };
    (req as IncomingMessage & { auth?: AuthInfo }).auth = authInfo;
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);

    let body: unknown;
    if (method === 'POST') {
      const read = await readJsonBody(req, maxBody);
      if (read.kind === 'too_large') return sendJsonRpcError(res, 413, -32000, `Request body too large: at most ${maxBody} bytes.`, { Connection: 'close' });
      if (read.kind === 'aborted') return;
      if (read.kind === 'invalid_json') return sendJsonRpcError(res, 400, -32700, 'Parse error: the body is not valid JSON.');
      body = read.value;
    }
    // While draining, answers and notifications still reach the calls in flight (an elicitation
    // answer, a cancellation); new requests and sessions are turned away.
    if (draining && (method !== 'POST' || containsRequest(body))) {
      return sendJsonRpcError(res, 503, -32000, 'The server is shutting down; retry shortly.', { Connection: 'close', 'Retry-After': '5' });
    }

    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string' && sessionId !== '') {
      const found = sessions.lookup(sessionId, owner);
      if (found.kind === 'unknown') return sendJsonRpcError(res, 404, -32001, 'Session not found: it expired or was closed; initialize a new one.');
      if (found.kind === 'not_owner') {
        logger.warning(`HTTP ${method}: ${describeCaller(caller)} used a session that belongs to another user; refused.`);
        return sendJsonRpcError(res, 403, -32000, 'Forbidden: this session was started by another user.');
      }
      const end = method === 'GET' ? () => undefined : sessions.begin(sessionId);
      res.on('close', end);
      const transport = (found.handle as SessionEntry).transport;
      return request ? request.run(() => transport.handleRequest(req, res, body)) : transport.handleRequest(req, res, body);
    }

    if (method !== 'POST' || !isInitializeRequest(body)) {
      return sendJsonRpcError(res, 400, -32000, 'Bad request: send initialize first, then pass the Mcp-Session-Id header it returned.');
    }
    if (!sessions.canOpen(owner)) {
      return sendJsonRpcError(
        res,
        429,
        -32000,
        `Too many sessions: ${describeCaller(caller)} already holds ${sessions.maxPerOwner}. Close one (DELETE ${MCP_PATH} with its Mcp-Session-Id) or wait ${Math.round(sessions.idleMs / 60_000)} min for idle ones to expire.`,
      );
    }
    const mcp = opts.createMcpServer(caller, { trackCall });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        const entry: SessionEntry = {
          transport,
          close: async () => {
            await transport.close().catch(() => undefined);
            await mcp.close().catch(() => undefined);
          },
        };
        sessions.add(id, owner, entry);
        logger.info(`Session ${id.slice(0, 8)}… opened by ${describeCaller(caller)}.`);
      },
    });
    // Set before connect: the SDK chains its own close handling onto this one.
    transport.onclose = () => {
      if (transport.sessionId) sessions.remove(transport.sessionId);
    };
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    } finally {
      // The transport refused the initialize (Accept, Content-Type, a batch): no session was opened, so
      // close the server now, or it stays attached to the shared logger for ever.
      if (transport.sessionId === undefined) await mcp.close().catch(() => undefined);
    }
  }

  async function isReady(): Promise<boolean> {
    const checks: Promise<boolean>[] = [];
    if (opts.auth.kind === 'entra') checks.push(opts.auth.ready());
    if (opts.readiness) checks.push(opts.readiness());
    return (await Promise.all(checks.map((c) => c.catch(() => false)))).every(Boolean);
  }

  function corsHeaders(origin: string): Record<string, string> {
    return {
      'Access-Control-Allow-Origin': normalizeOrigin(origin) ?? origin,
      'Access-Control-Expose-Headers': 'Mcp-Session-Id, WWW-Authenticate',
      Vary: 'Origin',
    };
  }

  function challenge(error: BearerError): string {
    const parts = [];
    if (error.code) parts.push(`error="${error.code}"`, `error_description="${error.description.replace(/["\\]/g, '')}"`);
    if (error.code === 'insufficient_scope' && opts.auth.kind === 'entra') parts.push(`scope="${opts.auth.scope}"`);
    parts.push(`resource_metadata="${metadataUrl}"`);
    return `Bearer ${parts.join(', ')}`;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const scheme = opts.tls ? 'https' : 'http';
  const boundUrl = `${scheme}://${urlHost(opts.host)}:${port}${MCP_PATH}`;
  resourceUrl = opts.resourceUrl ?? boundUrl;
  const resource = new URL(resourceUrl);
  metadataUrl = `${resource.origin}/.well-known/oauth-protected-resource${resource.pathname === '/' ? '' : resource.pathname}`;
  hosts = allowedHostnames({ bindHost: opts.host, resourceUrl, extra: opts.allowedHosts ?? [] });
  allowedOrigins = [
    ...opts.allowedOrigins,
    resource.origin,
    ...[...hosts].filter((h) => !isWildcardHost(h)).map((h) => `${scheme}://${h}:${port}`),
  ];
  for (const w of bindWarnings(opts.host, Boolean(opts.tls), opts.resourceUrl)) logger.warning(w);
  sessions.startSweeping();

  return {
    url: boundUrl,
    resourceUrl,
    sessions,
    inFlight: drain.inFlight,
    async shutdown(graceMs = DEFAULT_SHUTDOWN_GRACE_MS) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const drained = await drain.drained(graceMs);
      // Open GET streams would keep close() waiting: end every session, then every connection.
      await sessions.closeAll();
      server.closeAllConnections();
      await closed;
      return { drained };
    },
  };
}

/** What an operator must hear about the bind: cleartext off this machine, a wildcard without a public URL. */
export function bindWarnings(host: string, tls: boolean, resourceUrl: string | undefined): string[] {
  const warnings: string[] = [];
  if (!isLoopbackHost(host) && !tls) {
    warnings.push(
      `Listening on ${host} without TLS: terminate TLS in front of this server (a reverse proxy or ingress) — bearer tokens must never cross a network in clear text.`,
    );
  }
  if (isWildcardHost(host) && !resourceUrl) {
    warnings.push('Bound to a wildcard address without MDE_RESOURCE_URL: set it to the URL clients use, or their Host header will be refused.');
  }
  return warnings;
}

function containsRequest(body: unknown): boolean {
  const isRequest = (m: unknown) => typeof m === 'object' && m !== null && 'method' in m && 'id' in m;
  return Array.isArray(body) ? body.some(isRequest) : isRequest(body);
}

interface SessionEntry {
  transport: StreamableHTTPServerTransport;
  close(): Promise<void>;
}

/** RFC 9728 protected resource metadata, as clients need it to sign in with Entra ID. */
export function protectedResourceMetadata(resourceUrl: string, auth: Extract<HttpAuth, { kind: 'entra' }>) {
  return {
    resource: resourceUrl,
    authorization_servers: [auth.authorizationServer],
    scopes_supported: [auth.scope],
    bearer_methods_supported: ['header'],
    resource_name: 'Microsoft Defender for Endpoint app restriction (MCP)',
  };
}

/** Who, for logs and the audit trail: the user's name and object id, or the calling app. */
export function describeCaller(caller: Caller): string {
  switch (caller.kind) {
    case 'user':
      return `${caller.preferredUsername ?? caller.name ?? 'user'} (oid ${caller.oid})`;
    case 'app':
      return `app ${caller.appId}`;
    case 'anonymous':
      return 'an anonymous caller';
  }
}
