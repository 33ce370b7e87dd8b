/**
 * Configuration: what the settings (described once in settings.ts) mean together. Pure: argv and the
 * environment in, a validated Config (or every problem at once) out. Flags win over the environment;
 * secrets come only from the environment.
 */
import { StartupError } from './errors.js';
import { GUID, isLoopbackHost } from './net/hosts.js';
import { CLOUD_DEFAULTS, givenOfMode, named, readSettings, type CloudName, type SettingValues } from './settings.js';

export { SETTINGS, helpText } from './settings.js';

export type { LogLevel } from './log.js';
import type { LogLevel } from './log.js';
import type { ApprovalSettings } from './approval/approvals.js';
import type { Credential } from './auth/credential.js';
import type { ConfirmationMode } from './confirmation/confirm.js';
import type { HttpSettings } from './http/settings.js';
import { redactUrl } from './errors.js';
import type { PolicySettings } from './policy.js';


export interface Config {
  /** `simulator`: the embedded Defender simulator, no credentials. `live`: the real API through Entra ID. */
  target: 'live' | 'simulator';
  tenantId: string;
  clientId: string;
  credential: Credential | undefined;
  authorityHost: string;
  apiUrl: string;
  scope: string;
  httpTimeoutMs: number;
  confirmation: ConfirmationMode;
  skipConfirmation: boolean;
  rateLimit: { perMinute: number; perHour: number; maxWaitMs: number; perUserPerMinute: number | undefined };
  /** Where replicas share their state (MDE_REDIS_URL); undefined: this process keeps its own. */
  redisUrl: string | undefined;
  /** MDE_CONFIRMATION_KEY (and the previous one, for rotation), decoded; undefined: a random key per process. */
  confirmationKeys: { current: Buffer; previous: Buffer[] } | undefined;
  /** Append-only JSON Lines audit file; undefined: no audit trail. */
  auditLogPath: string | undefined;
  policy: PolicySettings;
  /** Register only read-only tools: the write tools do not exist for clients. */
  readOnly: boolean;
  logLevel: LogLevel;
  /** text (human-readable, the default) or json (one object per line, for log shippers). */
  logFormat: 'text' | 'json';
  /** Prometheus metrics on a listener of their own; port undefined: off. */
  metrics: { port: number | undefined; host: string };
  /** stdio (default), or Streamable HTTP (remote mode). */
  transport: 'stdio' | 'http';
  /** Remote mode's settings (their defaults with stdio). */
  http: HttpSettings;
  /** The two-person rule (remote mode with sign-in only); undefined: MDE_APPROVAL=none. */
  approval: ApprovalSettings | undefined;
}




export type ParseResult = { kind: 'run'; config: Config; warnings: string[] } | { kind: 'help' } | { kind: 'version' };

const DOMAIN = /^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/** Parse argv (without `node` and the script) and the environment into a validated Config. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const { values: v, problems } = readSettings(argv, env);
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const warnings: string[] = [];
  if (env.DEBUG && !v.given.has('logLevel')) warnings.push('DEBUG is set, but this server does not read it: set MDE_LOG_LEVEL=debug for more detail.');

  const simulator = v.simulator;
  const credential = simulator ? undefined : credentialOf(v, problems);
  if (simulator) {
    const ignored = givenOfMode('live', v.given);
    if (ignored.length > 0) warnings.push(`Simulator mode: ignoring ${ignored.join(', ')}.`);
  } else if (v.tenantId !== undefined && !GUID.test(v.tenantId) && !DOMAIN.test(v.tenantId)) {
    problems.push(`${named('tenantId')} must be the tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47) or a domain such as contoso.onmicrosoft.com (got "${v.tenantId}").`);
  }
  if (credential?.kind !== 'device-code' && !simulator) {
    // A token cache elsewhere is refused (someone expects a sign-in to be kept); the rest is ignored aloud.
    if (v.tokenCachePath) problems.push(`${named('tokenCachePath')} only applies to MDE_AUTH_METHOD=device-code.`);
    else if (givenOfMode('device-code', v.given).length > 0) warnings.push(`MDE_AUTH_METHOD is not device-code: ignoring ${givenOfMode('device-code', v.given).join(', ')}.`);
  }

  // The cloud picks the API host, the sign-in host and the token scope together; explicit settings win.
  const cloud: CloudName = v.cloud;
  let regionalApiUrl: string | undefined;
  if (v.region !== undefined) {
    if (cloud !== 'commercial') problems.push(`MDE_REGION applies to the commercial cloud only; MDE_CLOUD=${cloud} has one API host.`);
    else regionalApiUrl = `https://${v.region}.api.security.microsoft.com`;
  }
  const authorityHost = checkUrl(v.authorityHost ?? CLOUD_DEFAULTS.authorityHost[cloud], named('authorityHost'), false, problems);
  const apiUrl = simulator
    ? 'http://127.0.0.1' // replaced by the simulator's own address at start
    : checkUrl(v.apiUrl ?? regionalApiUrl ?? CLOUD_DEFAULTS.apiUrl[cloud], named('apiUrl'), true, problems).replace(/\/api(\/v1\.0)?$/i, ''); // the base, with or without /api

  if (v.skipConfirmation && v.confirmation === 'elicitation' && v.given.has('confirmation')) {
    problems.push('--dangerously-skip-confirmation contradicts MDE_CONFIRMATION=elicitation (--confirmation elicitation): choose one.');
  }
  if (v.rateLimitPerHour < v.rateLimitPerMinute) problems.push('MDE_RATE_LIMIT_PER_HOUR must not be smaller than MDE_RATE_LIMIT_PER_MINUTE.');

  const redisUrl = v.redisUrl === undefined ? undefined : checkRedisUrl(v.redisUrl, argv.some((a) => a.startsWith('--redis-url')), problems);
  const confirmationKeys = keysOf(v, redisUrl !== undefined, problems);

  // Checked here for syntax, so it is reported with every other problem; cli.ts compiles it for the
  // linear-time engine (comment-pattern.ts), which also refuses backreferences and lookaround.
  const commentPattern = v.commentPattern;
  if (commentPattern !== undefined) {
    try {
      new RegExp(commentPattern, 'u');
    } catch (error) {
      problems.push(`${named('commentPattern')} is not a valid regular expression: ${(error as Error).message}.`);
    }
  }

  const http = httpSettingsOf(v, simulator, credential, problems, warnings);
  const metricsHost = v.metricsHost;
  if (v.metricsPort === undefined && v.given.has('metricsHost')) warnings.push(`${named('metricsHost').split(' ')[0]} is set but metrics are off: set ${named('metricsPort')} to serve them.`);
  if (v.metricsPort !== undefined && !isLoopbackHost(metricsHost)) {
    warnings.push(`Metrics are served on ${metricsHost} without authentication: let only your Prometheus reach port ${v.metricsPort} (firewall, network policy).`);
  }
  const approval = approvalSettingsOf(v, http, problems, warnings);

  if (problems.length > 0) throw new StartupError(problems);
  return {
    kind: 'run',
    config: {
      target: simulator ? 'simulator' : 'live',
      // The simulator never borrows a real registration's ids: they name its Redis namespace, which would
      // then hold the real deployment's approvals, tokens and budget (for simulated users to decide).
      tenantId: simulator ? 'simulator' : (v.tenantId ?? 'simulator'),
      clientId: simulator ? 'simulator' : (v.clientId ?? 'simulator'),
      credential,
      authorityHost,
      apiUrl,
      scope: v.scope ?? CLOUD_DEFAULTS.scope[cloud],
      httpTimeoutMs: v.httpTimeoutMs,
      confirmation: v.confirmation,
      skipConfirmation: v.skipConfirmation,
      rateLimit: {
        perMinute: v.rateLimitPerMinute,
        perHour: v.rateLimitPerHour,
        maxWaitMs: v.rateLimitMaxWaitMs,
        perUserPerMinute: v.rateLimitPerUserPerMinute > 0 ? v.rateLimitPerUserPerMinute : undefined,
      },
      redisUrl,
      confirmationKeys,
      auditLogPath: v.auditLog,
      policy: { allowDeviceGroups: v.allowDeviceGroups, denyDeviceGroups: v.denyDeviceGroups, allowTags: v.allowTags, denyTags: v.denyTags, commentPattern },
      readOnly: v.readOnly,
      logLevel: v.logLevel,
      logFormat: v.logFormat,
      metrics: { port: v.metricsPort, host: metricsHost },
      transport: v.transport,
      http,
      approval,
    },
    warnings,
  };
}

/** Remote mode's settings, and what cannot be served safely (refused at start). */
function httpSettingsOf(v: SettingValues, simulator: boolean, credential: Credential | undefined, problems: string[], warnings: string[]): HttpSettings {
  // The simulator has no tenant to sign in against: it serves without sign-in, on loopback only.
  const auth = v.httpAuth ?? (simulator ? 'none' : 'entra');
  // An IPv6 literal is bound without brackets ("[::1]" would be looked up as a name and fail).
  const host = v.httpHost.trim().replace(/^\[(.*)\]$/, '$1');
  const resourceUrl = v.resourceUrl === undefined ? undefined : checkUrl(v.resourceUrl, named('resourceUrl'), true, problems);
  for (const origin of v.allowedOrigins) {
    let ok = false;
    try {
      const u = new URL(origin);
      ok = u.origin !== 'null' && u.pathname === '/' && !u.search && !u.hash && !u.username;
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`${named('allowedOrigins')} entries must be origins such as https://app.contoso.com (got "${origin}").`);
  }
  if (v.transport === 'http') {
    if (auth === 'none' && !isLoopbackHost(host)) {
      problems.push(`MDE_HTTP_AUTH=none serves without sign-in, so it is refused on ${host}: bind to 127.0.0.1 (${named('httpHost')}) or use MDE_HTTP_AUTH=entra.`);
    }
    if (auth === 'simulated-users' && (!simulator || !isLoopbackHost(host))) {
      // Stand-in identities must never be reachable against a real tenant or from another machine.
      problems.push(
        `MDE_HTTP_AUTH=simulated-users (stand-in analysts for the approval demo) works only with --simulator on a loopback bind${simulator ? `, not on ${host}` : ''}: against a real tenant use MDE_HTTP_AUTH=entra.`,
      );
    }
    // Against a real tenant, a public name for a loopback bind means a proxy or tunnel in front: anyone
    // reaching it would act with the app's own identity, without sign-in.
    if (auth === 'none' && !simulator) {
      const publicNames = [
        ...(resourceUrl && !isLoopbackHost(new URL(resourceUrl).hostname) ? [`MDE_RESOURCE_URL names ${new URL(resourceUrl).hostname}`] : []),
        ...(v.allowedHosts.some((h) => !isLoopbackHost(h.replace(/:\d+$/, ''))) ? [`MDE_ALLOWED_HOSTS names ${v.allowedHosts.filter((h) => !isLoopbackHost(h.replace(/:\d+$/, ''))).join(', ')}`] : []),
      ];
      if (publicNames.length > 0) {
        problems.push(`MDE_HTTP_AUTH=none serves without sign-in, so only loopback names may reach it, but ${publicNames.join(' and ')}: use MDE_HTTP_AUTH=entra behind a proxy or tunnel.`);
      }
    }
    if (simulator && auth === 'entra') {
      problems.push('The simulator has no tenant to sign in against: with --simulator, use MDE_HTTP_AUTH=none (the default) on a loopback bind.');
    }
    if (auth === 'entra' && credential && credential.kind !== 'secret' && credential.kind !== 'certificate') {
      problems.push(
        `Remote mode with Entra sign-in calls Defender On-Behalf-Of each analyst, which needs the app's client secret or certificate; MDE_AUTH_METHOD=${credential.kind} cannot exchange tokens.`,
      );
    }
    if (Boolean(v.tlsCertPath) !== Boolean(v.tlsKeyPath)) problems.push(`Set both ${named('tlsCertPath')} and ${named('tlsKeyPath')}, or neither.`);
  } else {
    const httpOnly = givenOfMode('http', v.given);
    if (httpOnly.length > 0) warnings.push(`stdio transport: ignoring ${httpOnly.join(', ')} (they apply to MDE_TRANSPORT=http).`);
  }
  return {
    host,
    port: v.httpPort,
    auth,
    appIdUri: v.appIdUri ?? `api://${v.clientId ?? 'simulator'}`,
    requiredScope: v.requiredScope,
    resourceUrl,
    allowedOrigins: v.allowedOrigins,
    allowedHosts: v.allowedHosts,
    appCallerRole: v.appCallerRole,
    tokenReuseMs: v.tokenReuseSeconds * 1000,
    sessionIdleMs: v.sessionIdleMinutes * 60_000,
    maxSessionsPerUser: v.maxSessionsPerUser,
    shutdownGraceMs: v.shutdownGraceSeconds * 1000,
    tlsCertPath: v.tlsCertPath,
    tlsKeyPath: v.tlsKeyPath,
  };
}

/** The two-person rule: only where the server knows who each caller is (one identity cannot be two people). */
function approvalSettingsOf(v: SettingValues, http: HttpSettings, problems: string[], warnings: string[]): ApprovalSettings | undefined {
  const detail = givenOfMode('two-person', v.given);
  if (v.approval !== 'two-person') {
    if (detail.length > 0) warnings.push(`MDE_APPROVAL is none: ignoring ${detail.join(', ')}.`);
    return undefined;
  }
  if (v.transport !== 'http' || http.auth === 'none') {
    problems.push(
      `MDE_APPROVAL=two-person (--approval two-person) needs remote mode with Entra sign-in, so that the server knows who requests and who approves (one identity cannot be two people): ` +
        (v.transport !== 'http' ? 'set MDE_TRANSPORT=http (--transport http) with MDE_HTTP_AUTH=entra, or set MDE_APPROVAL=none.' : 'MDE_HTTP_AUTH=none signs nobody in; use MDE_HTTP_AUTH=entra, or set MDE_APPROVAL=none.'),
    );
  }
  if (v.readOnly) warnings.push('--read-only: there is nothing to approve (the write tools are not registered).');
  const approverRole = v.approverRole;
  if (!/^[A-Za-z0-9._-]{1,120}$/.test(approverRole)) problems.push(`${named('approverRole')} must be an app role value such as MDE.Approver (letters, digits, dots, dashes, underscores; got "${approverRole}").`);
  return { deviceGroups: v.approvalDeviceGroups, tags: v.approvalTags, ttlMs: v.approvalTtlMinutes * 60_000, approverRole };
}

/** The sign-in method and what it needs, each missing or contradictory piece named. */
function credentialOf(v: SettingValues, problems: string[]): Credential | undefined {
  const { tenantId, clientId, clientSecret: secret, certificatePath, certificatePassword: password } = v;
  const needTenant = () => {
    if (!tenantId) problems.push(`Set ${named('tenantId')} to your Entra ID tenant id.`);
  };
  switch (v.authMethod) {
    case 'managed-identity':
      // A system-assigned identity needs nothing; AZURE_CLIENT_ID picks a user-assigned one.
      if (secret || certificatePath) problems.push('MDE_AUTH_METHOD=managed-identity takes no AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH: unset them.');
      return { kind: 'managed-identity', userAssignedClientId: clientId };
    case 'device-code':
      needTenant();
      if (!clientId) problems.push(`Set ${named('clientId')} to the client id of an app registration that allows public client flows.`);
      if (secret || certificatePath) problems.push('MDE_AUTH_METHOD=device-code signs in as a person and takes no AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH: unset them.');
      return { kind: 'device-code', tokenCachePath: v.tokenCachePath, timeoutSeconds: v.deviceCodeTimeoutSeconds };
    case 'client-credentials':
      needTenant();
      if (!clientId) problems.push(`Set ${named('clientId')} to the app registration's client id.`);
      if (secret && certificatePath) {
        problems.push('Both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set: keep exactly one of them.');
        return undefined;
      }
      if (secret) {
        if (password) problems.push('AZURE_CLIENT_CERTIFICATE_PASSWORD is set without AZURE_CLIENT_CERTIFICATE_PATH.');
        return { kind: 'secret', secret };
      }
      if (certificatePath) return { kind: 'certificate', path: certificatePath, password };
      problems.push(
        `Set AZURE_CLIENT_SECRET, or ${named('certificatePath')} to a PEM file with the key and certificate, ` +
          'or choose another sign-in with MDE_AUTH_METHOD (managed-identity, device-code). ' +
          'To try the server without a tenant, use --simulator (or MDE_SIMULATOR=1).',
      );
      return undefined;
  }
}

function checkUrl(text: string, names: string, allowHttpLoopback: boolean, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`${names} must be an absolute URL such as https://host (got "${text}").`);
    return text;
  }
  const httpOk = allowHttpLoopback && url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !httpOk) {
    problems.push(`${names} must use https${allowHttpLoopback ? ' (plain http is accepted only for localhost/127.0.0.1/::1)' : ''} (got "${text}").`);
  }
  if (url.search || url.hash || url.username || url.password) {
    problems.push(`${names} must not contain a query, fragment or credentials (got "${url.origin}...").`);
  }
  return url.toString().replace(/\/+$/, '');
}

/** redis://, rediss:// or unix:///absolute/path; a password only from the environment (argv is public). */
function checkRedisUrl(text: string, fromFlag: boolean, problems: string[]): string | undefined {
  const name = named('redisUrl');
  const unix = /^unix:\/\/(?:[^@/]*@)?(\/[^?#]*)/i.exec(text);
  if (/^unix:/i.test(text)) {
    if (!unix || unix[1] === '/') {
      problems.push(`${name} with a Unix socket must be unix:///absolute/path/to/redis.sock (got "${redactUrl(text)}").`);
      return undefined;
    }
  } else {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      problems.push(`${name} must be a URL such as redis://host:6379, rediss://host:6380 or unix:///path/to/redis.sock (got "${redactUrl(text)}").`);
      return undefined;
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      problems.push(`${name} must start with redis://, rediss:// (TLS) or unix:// (got "${url.protocol}//...").`);
      return undefined;
    }
  }
  if (fromFlag && /^[a-z]+:\/\/[^@/]*:[\s\S]*@/i.test(text)) {
    problems.push('--redis-url carries a password, which every user of the machine can read in the process list: put the URL in MDE_REDIS_URL instead.');
  }
  return text;
}


/** MDE_CONFIRMATION_KEY(_PREVIOUS): base64 of at least 32 bytes; required when replicas share state. */
function keysOf(v: SettingValues, shared: boolean, problems: string[]): Config['confirmationKeys'] {
  const decode = (text: string | undefined, name: string): Buffer | undefined => {
    if (text === undefined || text.trim() === '') return undefined;
    const t = text.trim();
    const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(t) ? Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64') : undefined;
    if (!bytes || bytes.length < 32) {
      problems.push(`${name} must be base64 of at least 32 random bytes (got ${bytes ? `${bytes.length} bytes` : 'text that is not base64'}); generate one with: openssl rand -base64 32`);
      return undefined;
    }
    return bytes;
  };
  const current = decode(v.confirmationKey, 'MDE_CONFIRMATION_KEY');
  const previous = decode(v.confirmationKeyPrevious, 'MDE_CONFIRMATION_KEY_PREVIOUS');
  if (previous && !current && v.confirmationKey === undefined) problems.push('MDE_CONFIRMATION_KEY_PREVIOUS is set without MDE_CONFIRMATION_KEY: set the new key too.');
  if (shared && v.confirmationKey === undefined) {
    problems.push(
      `${named('redisUrl')} needs MDE_CONFIRMATION_KEY, the same on every replica, so a token issued by one is accepted by another (base64 of at least 32 random bytes: openssl rand -base64 32).`,
    );
  }
  if (!v.given.has('redisUrl') && v.confirmationKey !== undefined) {
    // The ledger of spent tokens would be this process's memory: another process holding the key, or
    // this one after a restart, would accept a spent token again, lifting a restriction without a new yes.
    problems.push(
      `MDE_CONFIRMATION_KEY is set without ${named('redisUrl')}: spent confirmation tokens would be remembered by this process only, so another process with the same key (or this one after a restart) would accept a spent token again. Set MDE_REDIS_URL so every process shares the ledger, or unset MDE_CONFIRMATION_KEY (each process then signs with a random key of its own).`,
    );
  }
  return current ? { current, previous: previous ? [previous] : [] } : undefined;
}
