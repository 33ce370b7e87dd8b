/**
 * The one place the server's parts are put together from a Config: the audit trail, the Defender
 * connection (the simulator, or a tenant's sign-in), the shared state (memory or Redis) and the call
 * budget, the Defender client, confirmation tokens, the two-person rule. cli.ts uses it for stdio and
 * remote mode; tests build the production wiring in-process through it. Everything that can fail at
 * start fails here, before the server accepts a request, naming the setting to fix.
 */
import { NO_AUDIT, JsonlAuditTrail, REPLICA, type AuditTrail } from './audit.js';
import type { TokenProvider } from './auth/token-provider.js';
import { compileCommentPattern } from './comment-pattern.js';
import type { Config } from './config.js';
import { ConfirmationTokens } from './confirmation/token.js';
import { DefenderClient } from './defender/client.js';
import type { Logger } from './log.js';
import { NO_METRICS, type Metrics } from './metrics/metrics.js';
import { useProxyFromEnvironment } from './net/proxy.js';
import { currentPrincipal } from './request-scope.js';
import type { ServerDeps } from './server.js';
import { callBudget, openSharedState } from './store/open.js';
import type { SharedState } from './store/types.js';
import { VERSION } from './version.js';

/** Where Defender is and who the server is to it; remote mode's simulated analysts too. */
export interface Connection {
  apiUrl: string;
  tokens: TokenProvider;
  /** Stand-in analysts (MDE_HTTP_AUTH=simulated-users, simulator only): a Defender identity per persona. */
  userTokens?: (requestor: string) => TokenProvider;
  close: () => Promise<void>;
}

export interface Assembled {
  deps: ServerDeps;
  state: SharedState;
  connection: Connection;
  /** The start-up line, the same facts over stdio and HTTP; `where` names the transport's address. */
  banner: (where: string) => string;
  close: () => Promise<void>;
}

export interface AssembleIo {
  logger: Logger;
  metrics?: Metrics;
  /** The process environment: proxy variables (HTTPS_PROXY, NO_PROXY). */
  env: NodeJS.ProcessEnv;
  /** Values never to show (client secret, certificate password, Redis password, confirmation keys). */
  secrets: readonly string[];
}

export async function assemble(config: Config, io: AssembleIo): Promise<Assembled> {
  const { logger, secrets } = io;
  const metrics = io.metrics ?? NO_METRICS;
  const { commentPattern } = config.policy;
  const policy = { ...config.policy, commentPattern: commentPattern === undefined ? undefined : await compileCommentPattern(commentPattern) };

  let audit: AuditTrail = NO_AUDIT;
  if (config.auditLogPath) {
    const trail = new JsonlAuditTrail(config.auditLogPath, Date.now, REPLICA, secrets);
    const warning = await trail.prepare();
    if (warning) logger.warning(warning);
    audit = trail;
  }
  if (config.target !== 'simulator') await useProxyFromEnvironment(io.env, logger); // HTTPS_PROXY etc.: src/net/proxy.ts
  const connection = await connect(config, logger);

  // The budget, spent tokens and device locks: this process's, or shared by replicas through Redis.
  const state = await openSharedState(config, logger, metrics);
  const limiter = callBudget(state, config, (ms) =>
    logger.info(`Waiting ${Math.ceil(ms / 1000)} s for the Defender API budget (${config.rateLimit.perMinute}/min, ${config.rateLimit.perHour}/h).`),
  );
  const remote = config.transport === 'http';
  // Remote mode: each call's Defender identity comes from its caller (On-Behalf-Of, or the app's own).
  const tokens = remote ? (await import('./auth/caller-tokens.js')).perCallTokenProvider(connection.tokens.description) : connection.tokens;
  // Read at scrape time: this process's budget, or the replicas' shared one in Redis.
  if (limiter.usage) metrics.watchBudget(() => limiter.usage!(), config.rateLimit);
  const api = new DefenderClient({
    baseUrl: connection.apiUrl,
    tokens,
    timeoutMs: config.httpTimeoutMs,
    logger,
    limiter,
    secrets,
    // Remote mode: each caller's calls count against their fair share too (MDE_RATE_LIMIT_PER_USER_PER_MINUTE).
    ...(remote ? { budgetUser: currentPrincipal } : {}),
    metrics,
  });
  const keys = config.confirmationKeys;
  const deps: ServerDeps = {
    api,
    logger,
    metrics,
    scopeCalls: config.logFormat === 'json',
    confirmation: { mode: config.confirmation, skip: config.skipConfirmation },
    ...(keys ? { tokens: new ConfirmationTokens({ key: keys.current, previousKeys: keys.previous }) } : {}),
    ledger: state.tokens,
    flights: state.devices,
    secrets,
    audit,
    policy,
    readOnly: config.readOnly,
    // Simulated actions finish in seconds: poll them faster than the default.
    ...(config.target === 'simulator' ? { polling: { pollIntervalMs: 1_000 } } : {}),
  };
  if (config.approval) {
    // The two-person rule (remote mode only, checked in config): in the shared state, so every session
    // (and, with Redis, every replica) sees the same approvals.
    const [{ Approvals }, { APPROVAL_TOOLS }] = await Promise.all([import('./approval/approvals.js'), import('./tools/approval-tools.js')]);
    deps.approvals = { service: new Approvals({ store: state.approvals, settings: config.approval, audit }), tools: APPROVAL_TOOLS };
    // Read at scrape time; one that has passed its expiry no longer waits for anyone.
    metrics.watchApprovals(async () => (await state.approvals.pending()).filter((a) => Date.now() < Date.parse(a.expiresAt)).length);
  }
  if (config.skipConfirmation) {
    logger.warning(
      'DANGER: --dangerously-skip-confirmation is on. remove_app_restriction and cancel_machine_action will act WITHOUT asking a human. Use only behind your own approval workflow.',
    );
  }

  const banner =
    `API ${connection.apiUrl}; sign-in: ${signInText(config, connection)}; ` +
    `confirmation: ${config.skipConfirmation ? 'SKIPPED' : config.confirmation}; ${config.readOnly ? 'read-only; ' : ''}` +
    `${config.approval ? `approval: two-person (role ${config.approval.approverRole}, expires after ${config.approval.ttlMs / 60_000} min); ` : ''}` +
    `audit: ${config.auditLogPath ?? 'off'}; budget: ${config.rateLimit.perMinute}/min, ${config.rateLimit.perHour}/h` +
    (remote ? ` (shared by all callers${config.rateLimit.perUserPerMinute ? `, ${config.rateLimit.perUserPerMinute}/min per user` : ''})` : '') +
    `; state: ${state.description}; replica ${REPLICA.host} pid ${REPLICA.pid}.`;
  return {
    deps,
    state,
    connection,
    banner: (where) => `mde-app-restriction-mcp ${VERSION} on ${where}: ${banner}`,
    close: async () => {
      await connection.close().catch(() => undefined);
      await state.close().catch(() => undefined);
    },
  };
}

function signInText(config: Config, connection: Connection): string {
  if (config.transport !== 'http') return connection.tokens.description;
  if (config.http.auth === 'none') return 'none (MDE_HTTP_AUTH=none, loopback only)';
  if (config.http.auth === 'simulated-users') return 'SIMULATED users ada, bob (approver), carol (MDE_HTTP_AUTH=simulated-users, simulator and loopback only)';
  return (
    `Entra ID tenant ${config.tenantId}, audience ${config.clientId} or ${config.http.appIdUri}, scope ${config.http.requiredScope}; Defender calls On-Behalf-Of each user` +
    (config.http.appCallerRole ? `, app callers with role ${config.http.appCallerRole} as ${connection.tokens.description}` : '; app-only callers refused')
  );
}

async function connect(config: Config, logger: Logger): Promise<Connection> {
  if (config.target === 'simulator') {
    // Loaded only in simulator mode: the live server never pays for it at start-up.
    const [{ DefenderSimulator }, { simulatorTokenProvider }] = await Promise.all([import('./simulator/simulator.js'), import('./auth/msal.js')]);
    const simulator = new DefenderSimulator();
    const apiUrl = await simulator.listen();
    const personas = new Map<string, TokenProvider>();
    logger.info(`Simulator mode: serving a simulated Defender tenant at ${apiUrl} (no real devices are touched).`);
    return {
      apiUrl,
      tokens: simulatorTokenProvider(simulator.token),
      // Stand-in analysts (MDE_HTTP_AUTH=simulated-users): the simulator records each as requestor.
      userTokens: (requestor: string) => {
        let tokens = personas.get(requestor);
        if (!tokens) personas.set(requestor, (tokens = simulatorTokenProvider(simulator.tokenFor(requestor))));
        return tokens;
      },
      close: () => simulator.close(),
    };
  }
  const { createTokenProvider } = await import('./auth/providers.js');
  const tokens = createTokenProvider(config, logger);
  return { apiUrl: config.apiUrl, tokens, close: async () => undefined };
}
