/**
 * Remote-mode harness: the real HTTP server (startHttpServer) with the real MCP server per session, a
 * fake Entra ID over HTTPS (key set, OBO and client-credential grants) and the Defender simulator, and
 * real SDK clients over Streamable HTTP. Each client signs in with a token minted by the fake Entra.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, LoggingMessageNotificationSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach } from 'vitest';
import { NO_AUDIT, type AuditRecord, type AuditTrail } from '../../src/audit.js';
import { ToolError } from '../../src/errors.js';
import { perCallTokenProvider } from '../../src/auth/caller-tokens.js';
import { createMsalTokenProvider } from '../../src/auth/msal.js';
import { Approvals } from '../../src/approval/approvals.js';
import { APPROVAL_TOOLS } from '../../src/tools/approval-tools.js';
import { MemoryApprovalStore, type ApprovalStore } from '../../src/approval/store.js';
import { type ApprovalSettings } from '../../src/approval/approvals.js';
import { type ConfirmationMode } from '../../src/confirmation/confirm.js';
import { DefenderClient } from '../../src/defender/client.js';
import { memoryBudget } from './budget.js';
import { callLogFields, currentPrincipal } from '../../src/request-scope.js';
import { prepareRemoteAuth, remoteSessionFactory } from '../../src/http/run.js';
import type { HttpSettings } from '../../src/http/settings.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from '../../src/http/server.js';
import { createStderrLogger } from '../../src/log.js';
import type { Metrics } from '../../src/metrics/metrics.js';
import { FakeTenant } from './fake-tenant.js';
import { API_CLIENT_ID, API_SECRET, FakeEntra } from '../fakes/entra-id.js';
import { CLIENT_SECRET } from './harness.js';

export const APP_ID_URI = `api://${API_CLIENT_ID}`;
export const DEFENDER_SCOPE = 'https://api.securitycenter.microsoft.com/.default';

export interface RemoteOptions {
  auth?: 'entra' | 'none';
  appCallerRole?: string;
  allowedOrigins?: string[];
  sessionIdle?: { idleMs: number };
  maxSessionsPerUser?: number;
  now?: () => number;
  /** Build the MCP server of a session; default: the product's remote wiring (OBO, shared tokens). */
  createMcpServer?: (ctx: { sim: FakeTenant; apiUrl: string; entra: FakeEntra; logs: string[] }) => HttpServerOptions['createMcpServer'];
  confirmation?: ConfirmationMode;
  skipConfirmation?: boolean;
  audit?: AuditTrail;
  /** One fake clock for the simulator's world and get_machine_action's polling: waits pass at once. */
  fakeClock?: boolean;
  /** What the server counts. */
  metrics?: Metrics;
  /** The server's log lines (default: human-readable, collected in `logs`). */
  logFormat?: 'text' | 'json';
  /** MDE_APPROVAL=two-person with these settings (defaults: every device, 60 min, role MDE.Approver), on its own fake clock. */
  approval?: Partial<ApprovalSettings> & { store?: ApprovalStore };
  /** MDE_HTTP_TOKEN_REUSE_SECONDS, in ms (default 5 min). */
  tokenReuseMs?: number;
  /** Another replica of this deployment: its fakes (Entra ID, Defender) are shared; close this one first. */
  replicaOf?: { entra: FakeEntra; sim: FakeTenant; apiUrl: string };
  /** The call budget, with each caller's fair share (as cli.ts wires it); none when omitted. */
  budget?: { perMinute: number; perHour: number; maxWaitMs: number; perUserPerMinute?: number; minuteMs?: number };
}

export async function startRemote(opts: RemoteOptions) {
  // Another replica of the same deployment: the same Entra ID and Defender fakes, its own server.
  const shared = opts.replicaOf;
  const entra = shared?.entra ?? new FakeEntra();
  if (!shared) await entra.start();
  const clock = { now: Date.now() };
  const sim = shared?.sim ?? new FakeTenant({ clientSecret: CLIENT_SECRET, ...(opts.fakeClock ? { now: () => clock.now } : {}) });
  const apiUrl = shared?.apiUrl ?? (await sim.listen());
  const logs: string[] = [];
  const logger = createStderrLogger({ level: 'debug', write: (line) => void logs.push(line), ...(opts.logFormat === 'json' ? { format: 'json' as const, fields: callLogFields } : {}) });
  // What Entra issues (OBO and app tokens), Defender accepts, standing for whom Entra says.
  if (!shared) entra.onIssue = (token, who) => sim.acceptToken(token, who);
  // The server's own identity (client credentials), for app callers and MDE_HTTP_AUTH=none.
  const appTokens = createMsalTokenProvider({
    tenantId: entra.tenant,
    clientId: API_CLIENT_ID,
    credential: { kind: 'secret', secret: API_SECRET },
    authorityHost: entra.authorityHost,
    scope: DEFENDER_SCOPE,
    logger,
    timeoutMs: 5_000,
  });
  const settings: HttpSettings = {
    host: '127.0.0.1',
    port: 0,
    auth: opts.auth ?? 'entra',
    appIdUri: APP_ID_URI,
    requiredScope: 'user_impersonation',
    resourceUrl: undefined,
    allowedOrigins: opts.allowedOrigins ?? [],
    allowedHosts: [],
    appCallerRole: opts.appCallerRole,
    tokenReuseMs: opts.tokenReuseMs ?? 5 * 60_000,
    sessionIdleMs: opts.sessionIdle?.idleMs ?? 30 * 60_000,
    maxSessionsPerUser: opts.maxSessionsPerUser ?? 10,
    shutdownGraceMs: 25_000,
    tlsCertPath: undefined,
    tlsKeyPath: undefined,
  };
  const remote = prepareRemoteAuth(
    settings,
    { tenantId: entra.tenant, clientId: API_CLIENT_ID, authorityHost: entra.authorityHost, scope: DEFENDER_SCOPE, credential: { kind: 'secret', secret: API_SECRET }, timeoutMs: 5_000 },
    appTokens,
    logger,
  );
  // The product's wiring: one Defender client and one confirmation-token key for every session; each
  // call's Defender identity is looked up from the call in progress.
  // The approvals' clock: tests move it to expire an approval without waiting.
  const approvalClock = { offsetMs: 0 };
  const approvalStore = opts.approval ? (opts.approval.store ?? new MemoryApprovalStore({ now: () => Date.now() + approvalClock.offsetMs })) : undefined;
  // As cli.ts wires it: pending approvals read from the store at scrape time.
  if (opts.metrics && approvalStore) opts.metrics.watchApprovals(async () => (await approvalStore.pending()).filter((a) => Date.now() + approvalClock.offsetMs < Date.parse(a.expiresAt)).length);
  const approvals = opts.approval
    ? new Approvals({
        store: approvalStore!,
        settings: { deviceGroups: [], tags: [], ttlMs: 60 * 60_000, approverRole: 'MDE.Approver', ...opts.approval },
        audit: opts.audit ?? NO_AUDIT,
        now: () => Date.now() + approvalClock.offsetMs,
      })
    : undefined;
  const api = new DefenderClient({
    baseUrl: apiUrl,
    tokens: perCallTokenProvider('per caller'),
    timeoutMs: 5_000,
    logger,
    ...(opts.budget ? { limiter: memoryBudget(opts.budget), budgetUser: currentPrincipal } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const productServer = remoteSessionFactory(
    {
      api,
      logger,
      confirmation: { mode: opts.confirmation ?? 'auto', skip: opts.skipConfirmation ?? false },
      ...(opts.audit ? { audit: opts.audit } : {}),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      ...(approvals ? { approvals: { service: approvals, tools: APPROVAL_TOOLS } } : {}),
      ...(opts.fakeClock ? { polling: { now: () => clock.now, sleep: async (ms: number) => void (clock.now += ms) } } : {}),
    },
    remote,
  );
  const http: RunningHttpServer = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    allowedOrigins: settings.allowedOrigins,
    auth: remote.auth,
    createMcpServer: opts.createMcpServer ? opts.createMcpServer({ sim, apiUrl, entra, logs }) : productServer,
    logger,
    sessionIdleMs: opts.sessionIdle?.idleMs,
    maxSessionsPerUser: opts.maxSessionsPerUser,
    now: opts.now,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const clients: Client[] = [];

  /** Upstream traffic so far: Defender API requests and Entra token requests (key set fetches aside). */
  const upstream = () => ({ defender: sim.apiRequests().length, entraTokens: entra.tokenRequests().length });

  async function connect(
    token: string | undefined,
    o: {
      elicit?: 'accept' | 'decline' | ((p: ElicitRequest['params']) => ElicitResult);
      /** Like clients that never open the standalone GET stream: only each call's own stream exists. */
      noStandaloneStream?: boolean;
    } = {},
  ) {
    const client = new Client({ name: 'remote-test-client', version: '1.0.0' }, { capabilities: o.elicit ? { elicitation: { form: {} } } : {} });
    const prompts: ElicitRequest['params'][] = [];
    const notifications: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notifications.push(String(n.params.data)));
    if (o.elicit) {
      const answer = o.elicit;
      client.setRequestHandler(ElicitRequestSchema, async (request) => {
        prompts.push(request.params);
        if (typeof answer === 'function') return answer(request.params);
        return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
      });
    }
    let current = token;
    const transport = new StreamableHTTPClientTransport(new URL(http.url), {
      fetch: (url, init) => {
        if (o.noStandaloneStream && (init?.method ?? 'GET') === 'GET') return Promise.resolve(new Response(null, { status: 405 }));
        const headers = new Headers(init?.headers);
        if (current) headers.set('Authorization', `Bearer ${current}`);
        return fetch(url, { ...init, headers });
      },
    });
    await client.connect(transport);
    clients.push(client);
    return {
      client,
      transport,
      prompts,
      notifications,
      /** Later requests carry this token (a refreshed one, or someone else's). */
      useToken(t: string | undefined) {
        current = t;
      },
      async tool(name: string, args: Record<string, unknown>) {
        return (await client.callTool({ name, arguments: args })) as CallToolResult;
      },
    };
  }

  return {
    entra,
    sim,
    apiUrl,
    http,
    logs,
    upstream,
    connect,
    approvals,
    /** Move the approvals' clock forward. */
    advanceApprovalClock(ms: number) {
      approvalClock.offsetMs += ms;
    },
    /** A raw request to the server (for what an SDK client would never send). */
    raw(path: string, init: RequestInit = {}) {
      return fetch(new URL(path, http.url), init);
    },
    async close() {
      for (const c of clients.splice(0)) await c.close().catch(() => undefined);
      await http.shutdown(100);
      if (shared) return; // the first replica closes the fakes
      await sim.close();
      await entra.close();
    },
  };
}

export type Remote = Awaited<ReturnType<typeof startRemote>>;

/** One remote harness per test, closed after it. */
export function useRemote(): (opts: RemoteOptions) => Promise<Remote> {
  const open: Remote[] = [];
  afterEach(async () => {
    for (const r of open.splice(0).reverse()) await r.close(); // replicas before the one whose fakes they share
  });
  return async (opts) => {
    const r = await startRemote(opts);
    open.push(r);
    return r;
  };
}

/** The JSON-RPC initialize body an MCP client sends first. */
export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

export const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

/**
 * An audit trail that refuses the records `fails` picks (as a full disk would) and keeps the events of
 * the others, in order.
 */
export function failingAudit(fails: (record: Omit<AuditRecord, 'time'>) => boolean): { audit: AuditTrail; written: string[] } {
  const written: string[] = [];
  const audit: AuditTrail = {
    enabled: true,
    async write(record) {
      if (fails(record)) throw new ToolError('audit_unavailable', 'The audit log cannot be written (ENOSPC), so the action was refused: nothing was sent to Defender.', 'Fix MDE_AUDIT_LOG.');
      written.push(record.event);
    },
  };
  return { audit, written };
}
