/**
 * Protocol-level harness: the real server (createServer) and a real SDK Client over an in-memory linked
 * transport, with the real DefenderClient talking HTTP to the simulator on loopback. Only the clock-based
 * waits (Retry-After) are faked, so nothing sleeps for real.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach } from 'vitest';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, LoggingMessageNotificationSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createMsalTokenProvider, simulatorTokenProvider } from '../../src/auth/msal.js';
import type { AuditTrail } from '../../src/audit.js';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import { type ConfirmationMode } from '../../src/confirmation/confirm.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import { DefenderClient } from '../../src/defender/client.js';
import { memoryBudget, type BudgetWithClock } from './budget.js';
import { createStderrLogger } from '../../src/log.js';
import type { Metrics } from '../../src/metrics/metrics.js';
import { createServer } from '../../src/server.js';
import type { Tool } from '../../src/tools/define.js';
import { FakeTenant, type SimulatorOptions } from './fake-tenant.js';

export const RESTRICTED_DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07'; // finance-ws-017, Active
export const PENDING_DEVICE = '28001a0133878e92a6665e9ba00218e9aa7d25bc'; // hr-laptop-113, unrestrict pending
export const MAC_DEVICE = 'c4621166a729a3ab6e1d950af5658852165d6334'; // dev-mac-007, unsupported
export const UNKNOWN_DEVICE = 'ffffffffffffffffffffffffffffffffffffffff';
export const CLIENT_SECRET = 'Sup3r~S3cret.Value_for-tests';
export const tlsFixture = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));

export type ElicitBehaviour =
  | 'accept'
  | 'decline'
  | 'cancel'
  | 'accept_false'
  | 'fail'
  | ((request: ElicitRequest['params']) => Promise<ElicitResult> | ElicitResult);

export interface HarnessOptions {
  /** Declare elicitation and answer it so; undefined: the client does not declare elicitation. */
  elicit?: ElicitBehaviour;
  confirmation?: ConfirmationMode;
  skip?: boolean;
  simulator?: SimulatorOptions;
  timeoutMs?: number;
  now?: () => number;
  tokens?: ConfirmationTokens;
  rateLimit?: Partial<BudgetWithClock>;
  audit?: AuditTrail;
  policy?: Partial<Policy>;
  readOnly?: boolean;
  /** The tools to offer (default: the server's own). */
  tools?: readonly Tool[];
  /** Sign in through MSAL (client secret) against the simulator's HTTPS token endpoint, instead of a fixed token. */
  msal?: boolean;
  /** What the server counts (several harnesses may share one, as sessions of one process do). */
  metrics?: Metrics;
  /** Replaces the instant fake sleep (Retry-After, the budget, polling), e.g. with one the test releases. */
  sleep?: (ms: number) => Promise<void>;
  /** The MCP client's name and version (default test-client 1.0.0). */
  clientInfo?: { name: string; version: string };
  /** Configured secrets the server keeps out of results, errors and comments (as cli.ts passes them). */
  secrets?: readonly string[];
}

export async function startHarness(opts: HarnessOptions = {}) {
  // One fake clock for every wait (Retry-After, the rate budget, polling) and for the simulator's world
  // (action progress, its rate limit): sleeping advances it at once, so no test sleeps for real.
  const clock = { now: Date.now() };
  const sim = new FakeTenant({ clientSecret: CLIENT_SECRET, now: () => clock.now, ...opts.simulator });
  const apiUrl = await sim.listen();
  const logs: string[] = [];
  const logger = createStderrLogger({ level: 'debug', write: (line) => void logs.push(line) });
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    if (opts.sleep) return opts.sleep(ms);
    clock.now += ms;
  };
  const limiter = memoryBudget({ perMinute: 100, perHour: 1500, maxWaitMs: 20_000, ...opts.rateLimit, now: () => clock.now, sleep });
  let tokens = simulatorTokenProvider(sim.token);
  if (opts.msal) {
    const authorityHost = await sim.listen({ tls: { key: readFileSync(tlsFixture('server.key')), cert: readFileSync(tlsFixture('server.pem')) } });
    tokens = createMsalTokenProvider({
      tenantId: 'contoso-tenant',
      clientId: 'harness-client',
      credential: { kind: 'secret', secret: CLIENT_SECRET },
      authorityHost,
      scope: 'https://api.securitycenter.microsoft.com/.default',
      logger,
      timeoutMs: opts.timeoutMs ?? 5_000,
    });
  }
  const api = new DefenderClient({
    baseUrl: apiUrl,
    tokens,
    timeoutMs: opts.timeoutMs ?? 5_000,
    logger,
    sleep,
    limiter,
    now: () => clock.now,
    metrics: opts.metrics,
  });
  const server = createServer({
    api,
    logger,
    confirmation: { mode: opts.confirmation ?? 'auto', skip: opts.skip ?? false },
    tokens: opts.tokens,
    now: opts.now,
    audit: opts.audit,
    polling: { now: () => clock.now, sleep },
    policy: opts.policy ? { ...NO_POLICY, ...opts.policy } : undefined,
    readOnly: opts.readOnly,
    tools: opts.tools,
    metrics: opts.metrics,
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
  });

  const prompts: ElicitRequest['params'][] = [];
  const client = new Client(
    opts.clientInfo ?? { name: 'test-client', version: '1.0.0' },
    { capabilities: opts.elicit ? { elicitation: { form: {} } } : {} },
  );
  const notifications: { level: string; data: unknown }[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notifications.push({ level: n.params.level, data: n.params.data }));
  if (opts.elicit) {
    const behaviour = opts.elicit;
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      prompts.push(request.params);
      if (typeof behaviour === 'function') return behaviour(request.params);
      switch (behaviour) {
        case 'accept':
          return { action: 'accept', content: { confirm: true } };
        case 'accept_false':
          return { action: 'accept', content: { confirm: false } };
        case 'decline':
          return { action: 'decline' };
        case 'cancel':
          return { action: 'cancel' };
        case 'fail':
          throw new Error('the client could not show the prompt');
      }
    });
  }
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);

  return {
    sim,
    apiUrl,
    client,
    server,
    prompts,
    logs,
    sleeps,
    clock,
    notifications,
    async tool(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
      return (await client.callTool({ name, arguments: args })) as CallToolResult;
    },
    limiter,
    async call(args: Record<string, unknown>): Promise<CallToolResult> {
      return (await client.callTool({ name: 'remove_app_restriction', arguments: args })) as CallToolResult;
    },
    async close() {
      await client.close();
      await server.close();
      await sim.close();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

/** A harness per test, closed after each test: `const harness = useHarness();` at the top of a file. */
export function useHarness(): (opts?: HarnessOptions) => Promise<Harness> {
  const open: Harness[] = [];
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close();
  });
  return async (opts = {}) => {
    const h = await startHarness(opts);
    open.push(h);
    return h;
  };
}
