/**
 * Remote mode's entry, loaded by cli.ts only with `--transport http`: the Entra verifier and the
 * On-Behalf-Of source from the settings, the HTTP server, the start-up line, and graceful SIGTERM.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Credential } from '../auth/credential.js';
import type { HttpSettings } from './settings.js';

import { createCallerTokens } from '../auth/caller-tokens.js';
import { principalKey } from '../auth/caller.js';
import { createEntraVerifier, type Caller } from '../auth/entra-jwt.js';
import { GUID } from '../net/hosts.js';
import { ConfirmationTokens } from '../confirmation/token.js';
import { createUnrestrictSubmitter, type UnrestrictSubmitter } from '../defender/unrestrict.js';
import { createServer, type ServerDeps } from '../server.js';
import { createOboTokenSource } from '../auth/obo.js';
import type { TokenProvider } from '../auth/token-provider.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { simulatedUserVerifier } from './simulated-users.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, startHttpServer, type HttpAuth, type RunningHttpServer, type SessionHooks } from './server.js';

/** The server's own Entra identity: what validates callers' tokens and exchanges them On-Behalf-Of. */
/** A setting that cannot work stops the server at start (exit 2), saying what to change. */
const startupError = (message: string, nextStep: string) => new StartupError([`${message} ${nextStep}`]);

export interface RemoteIdentity {
  tenantId: string;
  clientId: string;
  authorityHost: string;
  /** The Defender scope requested On-Behalf-Of (`…/.default`). */
  scope: string;
  credential: Credential | undefined;
  timeoutMs: number;
}

export interface RemoteAuth {
  auth: HttpAuth;
  /** The token provider for one caller's Defender calls. */
  tokensFor(caller: Caller): TokenProvider;
}

/** The simulator's stand-in analysts (MDE_HTTP_AUTH=simulated-users): a Defender identity per persona. */
export interface SimulatedUsers {
  tokensFor(requestor: string): TokenProvider;
  approverRole: string;
}

/** Build sign-in for remote mode; throws StartupError for settings that cannot work. */
export function prepareRemoteAuth(settings: HttpSettings, identity: RemoteIdentity | undefined, appTokens: TokenProvider, logger: Logger, simulated?: SimulatedUsers): RemoteAuth {
  if (settings.auth === 'none') return { auth: { kind: 'none' }, tokensFor: createCallerTokens({ app: appTokens, obo: undefined }) };
  if (settings.auth === 'simulated-users') {
    // Settings validation allows this only with --simulator on loopback; this is the second lock.
    if (!simulated) throw startupError('MDE_HTTP_AUTH=simulated-users works only with --simulator.', 'Use MDE_HTTP_AUTH=entra against a real tenant.');
    return {
      auth: { kind: 'entra', verify: simulatedUserVerifier(simulated.approverRole), ready: async () => true, authorizationServer: 'http://127.0.0.1/simulated-users', scope: 'simulated' },
      tokensFor: (caller) => (caller.kind === 'user' ? simulated.tokensFor(caller.preferredUsername ?? caller.oid) : appTokens),
    };
  }
  if (!identity) {
    throw startupError('MDE_HTTP_AUTH=entra needs the API\'s app registration.', 'Set AZURE_TENANT_ID and AZURE_CLIENT_ID, or use MDE_HTTP_AUTH=none on a loopback bind.');
  }
  // Every token names its tenant by GUID (iss, tid): a domain name would refuse every caller.
  if (!GUID.test(identity.tenantId)) {
    throw startupError(
      `MDE_HTTP_AUTH=entra checks each caller's token against the tenant id, which Entra writes as a GUID; AZURE_TENANT_ID is "${identity.tenantId}".`,
      'Set AZURE_TENANT_ID to the tenant\'s GUID (Entra admin center > Overview > Tenant ID).',
    );
  }
  const credential = identity.credential;
  if (!credential || (credential.kind !== 'secret' && credential.kind !== 'certificate')) {
    throw startupError(
      'Remote mode with Entra sign-in calls Defender On-Behalf-Of each analyst, which needs the app\'s client secret or certificate.',
      'Set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (managed identity and device code cannot exchange tokens On-Behalf-Of).',
    );
  }
  const verifier = createEntraVerifier({
    authorityHost: identity.authorityHost,
    tenantId: identity.tenantId,
    clientId: identity.clientId,
    appIdUri: settings.appIdUri,
    requiredScope: settings.requiredScope,
    appCallerRole: settings.appCallerRole,
    reuseMs: settings.tokenReuseMs,
  });
  const obo = createOboTokenSource({
    tenantId: identity.tenantId,
    clientId: identity.clientId,
    credential,
    authorityHost: identity.authorityHost,
    scope: identity.scope,
    logger,
    timeoutMs: identity.timeoutMs,
  });
  return {
    auth: {
      kind: 'entra',
      verify: (h) => verifier.verify(h),
      ready: () => verifier.ready(),
      authorizationServer: verifier.issuer,
      scope: `${settings.appIdUri.replace(/\/+$/, '')}/${settings.requiredScope}`,
    },
    tokensFor: createCallerTokens({ app: appTokens, obo }),
  };
}

/**
 * The MCP server of a new session. Sessions share the Defender client (and with it the call budget),
 * one confirmation-token key and ledger (a token is single-use across sessions), and, per user, one
 * UnrestrictSubmitter: a user's concurrent calls for a device send one request, but another user's call
 * is never folded into it (it goes out under that user's own identity and Defender roles).
 */
export function remoteSessionFactory(deps: ServerDeps, remote: RemoteAuth): (caller: Caller, hooks?: SessionHooks) => McpServer {
  const tokens = deps.tokens ?? new ConfirmationTokens({ now: deps.now });
  const submitters = new Map<string, UnrestrictSubmitter>();
  return (caller, hooks) => {
    const key = principalKey(caller);
    let unrestrict = submitters.get(key);
    if (!unrestrict) {
      // With Redis (deps.flights), one write per user and device across replicas too; the scope is a hash,
      // so no user id is stored in Redis.
      const scope = createHash('sha256').update(key).digest('base64url').slice(0, 16);
      unrestrict = createUnrestrictSubmitter({ api: deps.api, ...(deps.now ? { now: deps.now } : {}), ...(deps.flights ? { flights: deps.flights, flightScope: scope } : {}) });
      submitters.set(key, unrestrict);
    }
    return createServer({ ...deps, tokens, unrestrict, remote: { tokensFor: remote.tokensFor }, ...(hooks ? { trackCall: hooks.trackCall } : {}) });
  };
}

function readTls(settings: HttpSettings): { cert: Buffer; key: Buffer } | undefined {
  if (!settings.tlsCertPath && !settings.tlsKeyPath) return undefined;
  if (!settings.tlsCertPath || !settings.tlsKeyPath) {
    throw startupError('TLS needs both MDE_HTTP_TLS_CERT_PATH and MDE_HTTP_TLS_KEY_PATH.', 'Set both (PEM files), or neither and terminate TLS in front.');
  }
  const read = (path: string, name: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw startupError(`${name} points at ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}).`, `Point ${name} at a readable PEM file.`);
    }
  };
  return { cert: read(settings.tlsCertPath, 'MDE_HTTP_TLS_CERT_PATH'), key: read(settings.tlsKeyPath, 'MDE_HTTP_TLS_KEY_PATH') };
}

/**
 * Start serving; SIGTERM/SIGINT drain calls in flight (up to the grace time), run `onClosed`, and exit 0.
 */
export async function serveHttp(opts: {
  settings: HttpSettings;
  remote: RemoteAuth;
  createMcpServer: (caller: Caller, hooks: SessionHooks) => McpServer;
  logger: Logger;
  /** Extra readiness check (a shared store). */
  readiness?: () => Promise<boolean>;
  /** Open sessions and sign-in refusals are counted here. */
  metrics?: Metrics;
  onClosed: () => Promise<void>;
  exit?: (code: number) => void;
}): Promise<RunningHttpServer> {
  const { settings, logger } = opts;
  const tls = readTls(settings);
  let http: RunningHttpServer;
  try {
    http = await startHttpServer({
      host: settings.host,
      port: settings.port,
      tls,
      resourceUrl: settings.resourceUrl,
      allowedOrigins: settings.allowedOrigins,
      allowedHosts: settings.allowedHosts,
      auth: opts.remote.auth,
      createMcpServer: opts.createMcpServer,
      logger,
      sessionIdleMs: settings.sessionIdleMs,
      maxSessionsPerUser: settings.maxSessionsPerUser,
      readiness: opts.readiness,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw startupError(`Cannot listen on ${settings.host}:${settings.port} (${code}).`, 'Pick another MDE_HTTP_PORT (--port; 0 picks a free one) or MDE_HTTP_HOST (--host).');
    }
    throw error;
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const grace = settings.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    logger.info(`${signal}: no new requests; waiting up to ${Math.round(grace / 1000)} s for ${http.inFlight()} call(s) in flight.`);
    const { drained } = await http.shutdown(grace);
    if (!drained) logger.warning('Shutdown grace time over: calls still in flight were cut off.');
    await opts.onClosed().catch(() => undefined);
    (opts.exit ?? process.exit)(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return http;
}
