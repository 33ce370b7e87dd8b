#!/usr/bin/env node
/**
 * Entry point (the package's bin): configuration -> dependencies -> stdio transport, or with
 * `--transport http` the remote server (src/http/, loaded only then).
 * stdout carries JSON-RPC only; everything human-readable goes to stderr.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SETTINGS, helpText, parseConfig, type Config } from './config.js';
import { DEFAULT_APPROVER_ROLE } from './settings.js';
import { StartupError, redact } from './errors.js';
import { createStderrLogger, type Logger } from './log.js';
import { NO_METRICS, type Metrics } from './metrics/metrics.js';
import { assemble, type Assembled } from './assemble.js';
import { createServer } from './server.js';
import { callLogFields } from './request-scope.js';
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
  // Asked for, not a server run: on stdout, so `--help | grep` and scripted version checks work.
  if (parsed.kind === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`mde-app-restriction-mcp ${VERSION}\n`);
    return 0;
  }
  const { config, warnings } = parsed;
  const secrets = secretValues(config);
  const logger = createStderrLogger({ level: config.logLevel, secrets, format: config.logFormat, ...(config.logFormat === 'json' ? { fields: callLogFields } : {}) });
  for (const w of warnings) logger.warning(w);
  // Loaded only when metrics are on: prom-client stays out of a plain stdio start.
  const metrics = config.metrics.port === undefined ? NO_METRICS : await startMetrics(config.metrics, logger);
  const app = await assemble(config, { logger, metrics, env: process.env, secrets });
  if (config.transport === 'http') return serveRemote(config, app, logger);
  const server = createServer(app.deps);
  logger.info(app.banner('stdio'));

  const transport = new StdioServerTransport();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await server.close().catch(() => undefined);
    await app.close();
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
async function serveRemote(config: Config, app: Assembled, logger: Logger): Promise<number> {
  const { prepareRemoteAuth, remoteSessionFactory, serveHttp } = await import('./http/run.js');
  const { connection, deps, state } = app;
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
    onClosed: app.close,
  });
  logger.info(app.banner(`${http.url} (resource ${http.resourceUrl})`));
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
