#!/usr/bin/env node
/**
 * Entry point (the package's bin): configuration -> dependencies -> stdio transport, or with
 * `--transport http` the remote server (src/http/, loaded only then).
 * stdout carries JSON-RPC only; everything human-readable goes to stderr.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SETTINGS, helpText, parseConfig, type Config } from './config.js';
import { DEFAULT_APPROVER_ROLE } from './settings.js';
import { NO_AUDIT, JsonlAuditTrail, REPLICA, type AuditTrail } from './audit.js';
import { compileCommentPattern } from './comment-pattern.js';
import { ConfirmationTokens } from './confirmation/token.js';
import { DefenderClient } from './defender/client.js';
import { StartupError, redact } from './errors.js';
import { createStderrLogger, type Logger } from './log.js';
import { NO_METRICS, type Metrics } from './metrics/metrics.js';
import { createServer, type ServerDeps } from './server.js';
import type { TokenProvider } from './auth/token-provider.js';
import { useProxyFromEnvironment } from './net/proxy.js';
import { callLogFields, currentPrincipal } from './request-scope.js';
import { callBudget, openSharedState } from './store/open.js';
import type { SharedState } from './store/types.js';
import { VERSION } from './version.js';

async function main(): Promise<number> {
  try {
    return await start();
  } catch (error) {
    // Every setting that stops the server (parsing, the audit file, the certificate) ends here.
    if (error instanceof StartupError) {
      // A secret can be echoed in a problem (a value given to the wrong setting): redacted like every log.
      process.stderr.write(`mde-app-restriction-mcp: ${redact(error.message, startupSecrets(process.env))}\n`);
      return 2;
    }
    throw error;
  }
}

async function start(): Promise<number> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stderr.write(`${helpText()}\n`);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stderr.write(`mde-app-restriction-mcp ${VERSION}\n`);
    return 0;
  }
  const { config, warnings } = parsed;
  const secrets = secretValues(config);
  const logger = createStderrLogger({ level: config.logLevel, secrets, format: config.logFormat, ...(config.logFormat === 'json' ? { fields: callLogFields } : {}) });
  for (const w of warnings) logger.warning(w);
  // Loaded only when metrics are on: prom-client stays out of a plain stdio start.
  const metrics = config.metrics.port === undefined ? NO_METRICS : await startMetrics(config.metrics, logger);
  const { commentPattern } = config.policy;
  const policy = { ...config.policy, commentPattern: commentPattern === undefined ? undefined : await compileCommentPattern(commentPattern) };

  // Everything that can fail at start fails here, before the server accepts a request, with the
  // setting to fix (an unwritable audit log, an unreadable certificate).
  let audit: AuditTrail = NO_AUDIT;
  if (config.auditLogPath) {
    const trail = new JsonlAuditTrail(config.auditLogPath);
    const warning = await trail.prepare();
    if (warning) logger.warning(warning);
    audit = trail;
  }
  if (config.target !== 'simulator') await useProxyFromEnvironment(process.env, logger); // HTTPS_PROXY etc.: src/net/proxy.ts
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
  const serverDeps: ServerDeps = {
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
    serverDeps.approvals = { service: new Approvals({ store: state.approvals, settings: config.approval, audit }), tools: APPROVAL_TOOLS };
    // Read at scrape time; one that has passed its expiry no longer waits for anyone.
    metrics.watchApprovals(async () => (await state.approvals.pending()).filter((a) => Date.now() < Date.parse(a.expiresAt)).length);
  }

  if (config.skipConfirmation) {
    logger.warning(
      'DANGER: --dangerously-skip-confirmation is on. remove_app_restriction and cancel_machine_action will act WITHOUT asking a human. Use only behind your own approval workflow.',
    );
  }
  if (remote) return serveRemote(config, serverDeps, connection, state, logger);
  const server = createServer(serverDeps);
  logger.info(
    `mde-app-restriction-mcp ${VERSION} on stdio: API ${connection.apiUrl}; sign-in: ${connection.tokens.description}; ` +
      `confirmation: ${config.skipConfirmation ? 'SKIPPED' : config.confirmation}; ${config.readOnly ? 'read-only; ' : ''}` +
      `audit: ${config.auditLogPath ?? 'off'}; budget: ${config.rateLimit.perMinute}/min, ${config.rateLimit.perHour}/h; ` +
      `state: ${state.description}; replica ${REPLICA.host} pid ${REPLICA.pid}.`,
  );

  const transport = new StdioServerTransport();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await server.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await state.close().catch(() => undefined);
    process.exit(0);
  };
  transport.onclose = () => void shutdown();
  process.stdin.on('end', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  await server.connect(transport);
  return -1; // keep running
}

/** Remote mode (loaded only with --transport http): one MCP server per session, everything else shared. */
async function serveRemote(
  config: Config,
  deps: ServerDeps,
  connection: { apiUrl: string; tokens: TokenProvider; close: () => Promise<void>; userTokens?: (requestor: string) => TokenProvider },
  state: SharedState,
  logger: Logger,
): Promise<number> {
  const { prepareRemoteAuth, remoteSessionFactory, serveHttp } = await import('./http/run.js');
  const remote = prepareRemoteAuth(
    config.http,
    config.target === 'simulator'
      ? undefined
      : { tenantId: config.tenantId, clientId: config.clientId, authorityHost: config.authorityHost, scope: config.scope, credential: config.credential, timeoutMs: config.httpTimeoutMs },
    connection.tokens,
    logger,
    connection.userTokens ? { tokensFor: connection.userTokens, approverRole: config.approval?.approverRole ?? DEFAULT_APPROVER_ROLE } : undefined,
  );
  const http = await serveHttp({
    settings: config.http,
    remote,
    createMcpServer: remoteSessionFactory(deps, remote),
    logger,
    metrics: deps.metrics,
    // Without the shared store nothing can be sent: /readyz answers 503 until it is back.
    readiness: async () => state.ready(),
    onClosed: async () => {
      await connection.close();
      await state.close();
    },
  });
  const signIn =
    config.http.auth === 'none'
      ? 'none (MDE_HTTP_AUTH=none, loopback only)'
      : config.http.auth === 'simulated-users'
        ? 'SIMULATED users ada, bob (approver), carol (MDE_HTTP_AUTH=simulated-users, simulator and loopback only)'
        : `Entra ID tenant ${config.tenantId}, audience ${config.clientId} or ${config.http.appIdUri}, scope ${config.http.requiredScope}; Defender calls On-Behalf-Of each user` +
        (config.http.appCallerRole ? `, app callers with role ${config.http.appCallerRole} as ${connection.tokens.description}` : '; app-only callers refused');
  logger.info(
    `mde-app-restriction-mcp ${VERSION} on ${http.url} (resource ${http.resourceUrl}): API ${connection.apiUrl}; sign-in: ${signIn}; ` +
      `confirmation: ${config.skipConfirmation ? 'SKIPPED' : config.confirmation}; ${config.readOnly ? 'read-only; ' : ''}` +
      `${config.approval ? `approval: two-person (role ${config.approval.approverRole}, expires after ${config.approval.ttlMs / 60_000} min); ` : ''}` +
      `audit: ${config.auditLogPath ?? 'off'}; budget: ${config.rateLimit.perMinute}/min, ${config.rateLimit.perHour}/h (shared by all callers` +
      `${config.rateLimit.perUserPerMinute ? `, ${config.rateLimit.perUserPerMinute}/min per user` : ''}); state: ${state.description}; replica ${REPLICA.host} pid ${REPLICA.pid}.`,
  );
  return -1; // keep running until SIGTERM
}

/** Serve /metrics on its own listener; the start-up line names it (port 0 picks one). */
async function startMetrics(settings: Config['metrics'], logger: Logger): Promise<Metrics> {
  const { createPrometheusMetrics, serveMetrics } = await import('./metrics/prometheus.js');
  const metrics = createPrometheusMetrics();
  const listener = await serveMetrics(metrics, { host: settings.host, port: settings.port ?? 0 });
  logger.info(`Metrics at ${listener.url} (Prometheus; no authentication).`);
  return metrics;
}

async function connect(config: Config, logger: Logger) {
  if (config.target === 'simulator') {
    // Loaded only in simulator mode: the live server never pays for it at start-up.
    const [{ DefenderSimulator }, { simulatorTokenProvider }] = await Promise.all([
      import('./simulator/simulator.js'),
      import('./auth/msal.js'),
    ]);
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

/** Before the configuration is parsed, the secrets are whatever the environment holds under their names. */
function startupSecrets(env: NodeJS.ProcessEnv): string[] {
  return SETTINGS.filter((s) => s.kind === 'secret' && s.env).flatMap((s) => {
    const value = env[s.env!];
    return value ? [value, value.trim()] : [];
  });
}

function secretValues(config: Config): string[] {
  const secrets: string[] = [];
  const c = config.credential;
  if (c?.kind === 'secret') secrets.push(c.secret);
  if (c?.kind === 'certificate' && c.password) secrets.push(c.password);
  const password = config.redisUrl ? /^[a-z]+:\/\/[^@/]*:([^@/]+)@/i.exec(config.redisUrl)?.[1] : undefined;
  if (password) secrets.push(password, decodeURIComponent(password));
  const keys = config.confirmationKeys;
  if (keys) for (const key of [keys.current, ...keys.previous]) secrets.push(key.toString('base64'), key.toString('base64url'));
  return secrets;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`mde-app-restriction-mcp: fatal: ${redact(error instanceof Error ? (error.stack ?? error.message) : String(error), startupSecrets(process.env))}\n`);
    process.exit(1);
  },
);
