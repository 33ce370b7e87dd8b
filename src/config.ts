/**
 * Configuration: environment variables and their twin CLI flags, parsed and validated in one pure place.
 * Flags win over the environment. Secrets (client secret, certificate password) are read only from the
 * environment, never from argv, where other users of the machine could see them.
 */
import { parseArgs } from 'node:util';

export type ConfirmationMode = 'auto' | 'elicitation';

export type Credential =
  | { kind: 'secret'; secret: string }
  | { kind: 'certificate'; path: string; password: string | undefined }
  | { kind: 'managed-identity'; userAssignedClientId: string | undefined }
  | { kind: 'device-code'; tokenCachePath: string | undefined };

export const AUTH_METHODS = ['client-credentials', 'managed-identity', 'device-code'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/**
 * Hosts and token audience per cloud (Defender's government-cloud page; see the README for what is
 * unconfirmed: the government audiences follow the API host, and MDE_SCOPE overrides them).
 */
export const CLOUDS = {
  commercial: {
    apiUrl: 'https://api.security.microsoft.com',
    authorityHost: 'https://login.microsoftonline.com',
    scope: 'https://api.securitycenter.microsoft.com/.default',
  },
  gcc: {
    apiUrl: 'https://api-gcc.securitycenter.microsoft.us',
    authorityHost: 'https://login.microsoftonline.com',
    scope: 'https://api-gcc.securitycenter.microsoft.us/.default',
  },
  'gcc-high': {
    apiUrl: 'https://api-gov.securitycenter.microsoft.us',
    authorityHost: 'https://login.microsoftonline.us',
    scope: 'https://api-gov.securitycenter.microsoft.us/.default',
  },
  dod: {
    apiUrl: 'https://api-gov.securitycenter.microsoft.us',
    authorityHost: 'https://login.microsoftonline.us',
    scope: 'https://api-gov.securitycenter.microsoft.us/.default',
  },
} as const;
export type CloudName = keyof typeof CLOUDS;
export const REGIONS = ['us', 'eu', 'uk', 'au', 'swa', 'ina'];

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
  rateLimit: { perMinute: number; perHour: number; maxWaitMs: number };
  /** Append-only JSON Lines audit file; undefined: no audit trail. */
  auditLogPath: string | undefined;
  policy: Policy;
  /** Register only read-only tools: the write tools do not exist for clients. */
  readOnly: boolean;
  /** stdio (default), or Streamable HTTP (remote mode). */
  transport: 'stdio' | 'http';
  /** Remote mode's settings (defaults when the transport is stdio). */
  http: HttpSettings;
}

/** Remote mode (`--transport http`). */
export interface HttpSettings {
  host: string;
  port: number;
  auth: 'entra' | 'none';
  /** The API's Application ID URI (default `api://<client id>`). */
  appIdUri: string;
  /** Short scope name, as Entra writes it in `scp`. */
  requiredScope: string;
  /** The public URL of the endpoint; default: the bound address. */
  resourceUrl: string | undefined;
  allowedOrigins: string[];
  allowedHosts: string[];
  appCallerRole: string | undefined;
  sessionIdleMs: number;
  maxSessionsPerUser: number;
  shutdownGraceMs: number;
  tlsCertPath: string | undefined;
  tlsKeyPath: string | undefined;
}

/** Optional guards, checked before any confirmation prompt. Lists are matched case-insensitively. */
export interface Policy {
  allowDeviceGroups: string[];
  denyDeviceGroups: string[];
  allowTags: string[];
  denyTags: string[];
  commentPattern: RegExp | undefined;
}

export const NO_POLICY: Policy = { allowDeviceGroups: [], denyDeviceGroups: [], allowTags: [], denyTags: [], commentPattern: undefined };

export type ParseResult =
  | { kind: 'run'; config: Config; warnings: string[] }
  | { kind: 'help'; text: string }
  | { kind: 'version' };

export const DEFAULTS = {
  ...CLOUDS.commercial,
  httpTimeoutMs: 30_000,
  confirmation: 'auto' as ConfirmationMode,
  rateLimitPerMinute: 100,
  rateLimitPerHour: 1500,
  rateLimitMaxWaitMs: 20_000,
} as const;

interface Setting {
  env?: string;
  flag?: string;
  /** Takes a value (`--flag VALUE`) or is a switch. */
  type: 'string' | 'boolean';
  secret?: boolean;
  help: string;
}

/** Every setting, in the order `--help` and the README list them. */
export const SETTINGS: readonly Setting[] = [
  { env: 'AZURE_TENANT_ID', flag: 'tenant-id', type: 'string', help: 'Entra ID tenant (directory) id.' },
  { env: 'AZURE_CLIENT_ID', flag: 'client-id', type: 'string', help: 'Application (client) id of the app registration.' },
  { env: 'AZURE_CLIENT_SECRET', type: 'string', secret: true, help: 'Client secret (environment only).' },
  {
    env: 'AZURE_CLIENT_CERTIFICATE_PATH',
    flag: 'client-certificate-path',
    type: 'string',
    help: 'PEM file with the private key and the certificate (instead of a secret).',
  },
  {
    env: 'AZURE_CLIENT_CERTIFICATE_PASSWORD',
    type: 'string',
    secret: true,
    help: 'Password of an encrypted private key in that PEM file (environment only).',
  },
  {
    env: 'MDE_AUTH_METHOD',
    flag: 'auth-method',
    type: 'string',
    help: 'client-credentials (default: secret or certificate), managed-identity (in Azure; AZURE_CLIENT_ID picks a user-assigned identity), or device-code (sign in as a person).',
  },
  {
    env: 'MDE_TOKEN_CACHE_PATH',
    flag: 'token-cache-path',
    type: 'string',
    help: 'device-code only: keep the signed-in session in this file (mode 0600) across restarts; memory only when unset.',
  },
  {
    env: 'MDE_CLOUD',
    flag: 'cloud',
    type: 'string',
    help: 'commercial (default), gcc, gcc-high or dod: picks the API host, sign-in host and token scope together.',
  },
  {
    env: 'MDE_REGION',
    flag: 'region',
    type: 'string',
    help: 'Commercial regional API host: us, eu, uk, au, swa or ina (https://<region>.api.security.microsoft.com).',
  },
  {
    env: 'AZURE_AUTHORITY_HOST',
    flag: 'authority-host',
    type: 'string',
    help: `Entra ID sign-in host, https only (default ${DEFAULTS.authorityHost}).`,
  },
  {
    env: 'MDE_API_URL',
    flag: 'api-url',
    type: 'string',
    help: `Defender API base URL (default ${DEFAULTS.apiUrl}); plain http only for loopback hosts.`,
  },
  { env: 'MDE_SCOPE', flag: 'scope', type: 'string', help: `Token scope (default ${DEFAULTS.scope}).` },
  {
    env: 'MDE_HTTP_TIMEOUT_MS',
    flag: 'http-timeout-ms',
    type: 'string',
    help: `Timeout of each HTTP request in milliseconds (default ${DEFAULTS.httpTimeoutMs}).`,
  },
  {
    env: 'MDE_CONFIRMATION',
    flag: 'confirmation',
    type: 'string',
    help: 'auto (default): ask through elicitation, else through a confirmation token; elicitation: only elicitation, fail closed.',
  },
  {
    env: 'MDE_SIMULATOR',
    flag: 'simulator',
    type: 'boolean',
    help: 'Serve the tools against the embedded Defender simulator; no credentials needed (MDE_SIMULATOR=1).',
  },
  {
    env: 'MDE_RATE_LIMIT_PER_MINUTE',
    flag: 'rate-limit-per-minute',
    type: 'string',
    help: `Defender calls allowed in any rolling minute, for this process (default ${DEFAULTS.rateLimitPerMinute}, Defender's budget).`,
  },
  {
    env: 'MDE_RATE_LIMIT_PER_HOUR',
    flag: 'rate-limit-per-hour',
    type: 'string',
    help: `Defender calls allowed in any rolling hour (default ${DEFAULTS.rateLimitPerHour}).`,
  },
  {
    env: 'MDE_RATE_LIMIT_MAX_WAIT_MS',
    flag: 'rate-limit-max-wait-ms',
    type: 'string',
    help: `How long a call may wait for the budget before it fails with the time it frees up (default ${DEFAULTS.rateLimitMaxWaitMs}).`,
  },
  {
    env: 'MDE_AUDIT_LOG',
    flag: 'audit-log',
    type: 'string',
    help: 'Append-only JSON Lines audit file (created with mode 0600). When set and not writable, actions are refused.',
  },
  {
    env: 'MDE_ALLOW_DEVICE_GROUPS',
    flag: 'allow-device-groups',
    type: 'string',
    help: 'Comma-separated device groups (rbacGroupName) the write tools may touch; others are refused.',
  },
  { env: 'MDE_DENY_DEVICE_GROUPS', flag: 'deny-device-groups', type: 'string', help: 'Comma-separated device groups the write tools must never touch.' },
  { env: 'MDE_ALLOW_TAGS', flag: 'allow-tags', type: 'string', help: 'Comma-separated machine tags: a device must carry at least one of them.' },
  { env: 'MDE_DENY_TAGS', flag: 'deny-tags', type: 'string', help: 'Comma-separated machine tags: a device carrying any of them is refused.' },
  {
    env: 'MDE_COMMENT_PATTERN',
    flag: 'comment-pattern',
    type: 'string',
    help: 'A regular expression every comment must match, e.g. "INC-\\d+" to require a ticket reference.',
  },
  {
    env: 'MDE_READ_ONLY',
    flag: 'read-only',
    type: 'boolean',
    help: 'Do not register the write tools at all (MDE_READ_ONLY=1).',
  },
  {
    env: 'MDE_TRANSPORT',
    flag: 'transport',
    type: 'string',
    help: 'stdio (default: a client spawns the server) or http (remote mode: MCP Streamable HTTP at /mcp, every caller signed in with Entra ID).',
  },
  { env: 'MDE_HTTP_HOST', flag: 'host', type: 'string', help: 'http: the bind address (default 127.0.0.1). Any other than loopback needs TLS, here or in front.' },
  { env: 'MDE_HTTP_PORT', flag: 'port', type: 'string', help: 'http: the port (default 3000; 0 picks a free one, named in the start-up line).' },
  {
    env: 'MDE_HTTP_AUTH',
    flag: 'http-auth',
    type: 'string',
    help: 'http: entra (default; with --simulator: none) or none (no sign-in; refused on any bind but loopback).',
  },
  { env: 'MDE_APP_ID_URI', flag: 'app-id-uri', type: 'string', help: 'http: the API\'s Application ID URI (default api://<AZURE_CLIENT_ID>); make it the resource URL.' },
  { env: 'MDE_REQUIRED_SCOPE', flag: 'required-scope', type: 'string', help: 'http: the delegated scope every user token must carry (default user_impersonation).' },
  { env: 'MDE_RESOURCE_URL', flag: 'resource-url', type: 'string', help: 'http: the endpoint\'s public URL as clients see it (default http://<host>:<port>/mcp).' },
  { env: 'MDE_ALLOWED_ORIGINS', flag: 'allowed-origins', type: 'string', help: 'http: comma-separated browser origins allowed to call (default none; other Origins get 403).' },
  { env: 'MDE_ALLOWED_HOSTS', flag: 'allowed-hosts', type: 'string', help: 'http: extra comma-separated Host names accepted besides the bind address and the resource URL\'s host.' },
  {
    env: 'MDE_APP_CALLER_ROLE',
    flag: 'app-caller-role',
    type: 'string',
    help: 'http: the app role an app-only (client-credential) caller must carry; such callers act with this server\'s own identity. Unset: app-only callers are refused.',
  },
  { env: 'MDE_HTTP_SESSION_IDLE_MINUTES', flag: 'session-idle-minutes', type: 'string', help: 'http: close sessions idle this long (default 30).' },
  { env: 'MDE_HTTP_MAX_SESSIONS_PER_USER', flag: 'max-sessions-per-user', type: 'string', help: 'http: sessions one user may hold at once (default 10).' },
  { env: 'MDE_HTTP_SHUTDOWN_GRACE_SECONDS', flag: 'shutdown-grace-seconds', type: 'string', help: 'http: on SIGTERM, how long calls in flight may take to finish (default 25).' },
  { env: 'MDE_HTTP_TLS_CERT_PATH', flag: 'tls-cert-path', type: 'string', help: 'http: PEM certificate (chain) to serve HTTPS here.' },
  { env: 'MDE_HTTP_TLS_KEY_PATH', flag: 'tls-key-path', type: 'string', help: 'http: PEM private key for MDE_HTTP_TLS_CERT_PATH.' },
  {
    flag: 'dangerously-skip-confirmation',
    type: 'boolean',
    help: 'Turn the confirmation gate off, for automation with its own approvals. Warns on every call. No environment twin.',
  },
  { flag: 'help', type: 'boolean', help: 'Print this help and exit.' },
  { flag: 'version', type: 'boolean', help: 'Print the version and exit.' },
];

export function helpText(): string {
  const rows = SETTINGS.map((s) => {
    const names = [s.env, s.flag ? `--${s.flag}${s.type === 'string' ? ' VALUE' : ''}` : undefined]
      .filter(Boolean)
      .join(' | ');
    return `  ${names}\n      ${s.help}`;
  });
  return [
    'mde-app-restriction-mcp: an MCP server (stdio) that lifts the app-execution restriction on a device',
    'through Microsoft Defender for Endpoint, after a human confirms.',
    '',
    'Usage: mde-app-restriction-mcp [flags]',
    '       mde-app-restriction-mcp --simulator     (try it without a tenant)',
    '',
    'Settings (environment variable | flag; the flag wins):',
    ...rows,
    '',
    'Credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH.',
  ].join('\n');
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off']);

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Parse argv (without `node` and the script) and the environment into a validated Config. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const s of SETTINGS) if (s.flag) options[s.flag] = { type: s.type };

  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigProblems([`${reason}. Run with --help to list every flag.`]);
  }
  if (values.help) return { kind: 'help', text: helpText() };
  if (values.version) return { kind: 'version' };

  const problems: string[] = [];
  const warnings: string[] = [];
  const read = (envName: string | undefined, flag: string | undefined): string | undefined => {
    const fromFlag = flag ? values[flag] : undefined;
    if (typeof fromFlag === 'string') return fromFlag.trim();
    const fromEnv = envName ? env[envName] : undefined;
    return fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv.trim();
  };

  /** A switch: the flag, or its variable set to 1/true/yes/on (0/false/no/off/empty: off). */
  const readSwitch = (envName: string, flag: string): boolean => {
    if (values[flag] === true) return true;
    const text = env[envName]?.trim().toLowerCase();
    if (text === undefined || FALSE_WORDS.has(text)) return false;
    if (TRUE_WORDS.has(text)) return true;
    problems.push(`${envName} must be 1 or 0 (got "${env[envName]}").`);
    return false;
  };
  const simulator = readSwitch('MDE_SIMULATOR', 'simulator');
  const readOnly = readSwitch('MDE_READ_ONLY', 'read-only');


  const wholeNumber = (envName: string, flag: string, fallback: number, min: number, max: number): number => {
    const text = read(envName, flag);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      problems.push(`${envName} (--${flag}) must be a whole number from ${min} to ${max} (got "${text}").`);
      return fallback;
    }
    return n;
  };

  const tenantId = read('AZURE_TENANT_ID', 'tenant-id');
  const clientId = read('AZURE_CLIENT_ID', 'client-id');
  // Secrets are not trimmed: a secret may legitimately end with a space, however unlikely.
  const secret = env.AZURE_CLIENT_SECRET ? env.AZURE_CLIENT_SECRET : undefined;
  const certificatePath = read('AZURE_CLIENT_CERTIFICATE_PATH', 'client-certificate-path');
  const certificatePassword = env.AZURE_CLIENT_CERTIFICATE_PASSWORD ? env.AZURE_CLIENT_CERTIFICATE_PASSWORD : undefined;
  const tokenCachePath = read('MDE_TOKEN_CACHE_PATH', 'token-cache-path');
  const methodText = (read('MDE_AUTH_METHOD', 'auth-method') ?? 'client-credentials').toLowerCase();
  if (!AUTH_METHODS.includes(methodText as AuthMethod)) {
    problems.push(`MDE_AUTH_METHOD (--auth-method) must be one of ${AUTH_METHODS.join(', ')} (got "${methodText}").`);
  }
  const method = methodText as AuthMethod;

  let credential: Credential | undefined;
  if (simulator) {
    const ignored = [
      tenantId && 'AZURE_TENANT_ID',
      clientId && 'AZURE_CLIENT_ID',
      secret && 'AZURE_CLIENT_SECRET',
      certificatePath && 'AZURE_CLIENT_CERTIFICATE_PATH',
      read('MDE_API_URL', 'api-url') && 'MDE_API_URL',
    ].filter(Boolean);
    if (ignored.length > 0) warnings.push(`Simulator mode: ignoring ${ignored.join(', ')}.`);
  } else if (method === 'managed-identity') {
    // A system-assigned identity needs nothing; AZURE_CLIENT_ID picks a user-assigned one.
    if (secret || certificatePath) problems.push('MDE_AUTH_METHOD=managed-identity takes no AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH: unset them.');
    credential = { kind: 'managed-identity', userAssignedClientId: clientId };
  } else if (method === 'device-code') {
    if (!tenantId) problems.push('Set AZURE_TENANT_ID (or --tenant-id) to your Entra ID tenant id.');
    if (!clientId) problems.push('Set AZURE_CLIENT_ID (or --client-id) to the client id of an app registration that allows public client flows.');
    if (secret || certificatePath) problems.push('MDE_AUTH_METHOD=device-code signs in as a person and takes no AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH: unset them.');
    credential = { kind: 'device-code', tokenCachePath };
  } else if (method === 'client-credentials') {
    if (!tenantId) problems.push('Set AZURE_TENANT_ID (or --tenant-id) to your Entra ID tenant id.');
    if (!clientId) problems.push('Set AZURE_CLIENT_ID (or --client-id) to the app registration\'s client id.');
    if (secret && certificatePath) {
      problems.push('Both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set: keep exactly one of them.');
    } else if (secret) {
      credential = { kind: 'secret', secret };
      if (certificatePassword) problems.push('AZURE_CLIENT_CERTIFICATE_PASSWORD is set without AZURE_CLIENT_CERTIFICATE_PATH.');
    } else if (certificatePath) {
      credential = { kind: 'certificate', path: certificatePath, password: certificatePassword };
    } else {
      problems.push(
        'Set AZURE_CLIENT_SECRET, or AZURE_CLIENT_CERTIFICATE_PATH (or --client-certificate-path) to a PEM file with the key and certificate, ' +
          'or choose another sign-in with MDE_AUTH_METHOD (managed-identity, device-code). ' +
          'To try the server without a tenant, use --simulator (or MDE_SIMULATOR=1).',
      );
    }
  }
  if (tokenCachePath && credential?.kind !== 'device-code' && !simulator) {
    problems.push('MDE_TOKEN_CACHE_PATH (--token-cache-path) only applies to MDE_AUTH_METHOD=device-code.');
  }

  // The cloud picks the API host, the sign-in host and the token scope together; explicit settings win.
  const cloudText = (read('MDE_CLOUD', 'cloud') ?? 'commercial').toLowerCase();
  const cloud = CLOUDS[cloudText as CloudName];
  if (!cloud) problems.push(`MDE_CLOUD (--cloud) must be one of ${Object.keys(CLOUDS).join(', ')} (got "${cloudText}").`);
  const region = read('MDE_REGION', 'region')?.toLowerCase();
  let regionalApiUrl: string | undefined;
  if (region !== undefined) {
    if (!REGIONS.includes(region)) problems.push(`MDE_REGION (--region) must be one of ${REGIONS.join(', ')} (got "${region}").`);
    else if (cloudText !== 'commercial') problems.push(`MDE_REGION applies to the commercial cloud only; MDE_CLOUD=${cloudText} has one API host.`);
    else regionalApiUrl = `https://${region}.api.security.microsoft.com`;
  }
  const defaults = cloud ?? CLOUDS.commercial;

  const authorityHost = checkUrl(read('AZURE_AUTHORITY_HOST', 'authority-host') ?? defaults.authorityHost, {
    names: 'AZURE_AUTHORITY_HOST (--authority-host)',
    allowHttpLoopback: false,
    problems,
  });
  const apiUrl = simulator
    ? 'http://127.0.0.1' // replaced by the simulator's own address at start
    : checkUrl(read('MDE_API_URL', 'api-url') ?? regionalApiUrl ?? defaults.apiUrl, {
        names: 'MDE_API_URL (--api-url)',
        allowHttpLoopback: true,
        problems,
      }).replace(/\/api(\/v1\.0)?$/i, ''); // the base URL, whether or not it was given with the /api prefix
  const scope = read('MDE_SCOPE', 'scope') ?? defaults.scope;
  const httpTimeoutMs = wholeNumber('MDE_HTTP_TIMEOUT_MS', 'http-timeout-ms', DEFAULTS.httpTimeoutMs, 100, 600_000);

  const confirmationText = (read('MDE_CONFIRMATION', 'confirmation') ?? DEFAULTS.confirmation).toLowerCase();
  let confirmation: ConfirmationMode = DEFAULTS.confirmation;
  if (confirmationText === 'auto' || confirmationText === 'elicitation') confirmation = confirmationText;
  else problems.push(`MDE_CONFIRMATION (--confirmation) must be "auto" or "elicitation" (got "${confirmationText}").`);

  const skipConfirmation = values['dangerously-skip-confirmation'] === true;
  if (skipConfirmation && confirmation === 'elicitation' && read('MDE_CONFIRMATION', 'confirmation')) {
    problems.push(
      '--dangerously-skip-confirmation contradicts MDE_CONFIRMATION=elicitation (--confirmation elicitation): choose one.',
    );
  }

  const rateLimit = {
    perMinute: wholeNumber('MDE_RATE_LIMIT_PER_MINUTE', 'rate-limit-per-minute', DEFAULTS.rateLimitPerMinute, 1, 1_000_000),
    perHour: wholeNumber('MDE_RATE_LIMIT_PER_HOUR', 'rate-limit-per-hour', DEFAULTS.rateLimitPerHour, 1, 100_000_000),
    maxWaitMs: wholeNumber('MDE_RATE_LIMIT_MAX_WAIT_MS', 'rate-limit-max-wait-ms', DEFAULTS.rateLimitMaxWaitMs, 0, 3_600_000),
  };
  if (rateLimit.perHour < rateLimit.perMinute) {
    problems.push('MDE_RATE_LIMIT_PER_HOUR must not be smaller than MDE_RATE_LIMIT_PER_MINUTE.');
  }

  const list = (envName: string, flag: string) =>
    (read(envName, flag) ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  let commentPattern: RegExp | undefined;
  const patternText = read('MDE_COMMENT_PATTERN', 'comment-pattern');
  if (patternText !== undefined) {
    try {
      commentPattern = new RegExp(patternText, 'u');
    } catch (error) {
      problems.push(`MDE_COMMENT_PATTERN (--comment-pattern) is not a valid regular expression: ${(error as Error).message}.`);
    }
  }
  const policy: Policy = {
    allowDeviceGroups: list('MDE_ALLOW_DEVICE_GROUPS', 'allow-device-groups'),
    denyDeviceGroups: list('MDE_DENY_DEVICE_GROUPS', 'deny-device-groups'),
    allowTags: list('MDE_ALLOW_TAGS', 'allow-tags'),
    denyTags: list('MDE_DENY_TAGS', 'deny-tags'),
    commentPattern,
  };
  const auditLogPath = read('MDE_AUDIT_LOG', 'audit-log');

  // ---- remote mode ----
  const transportText = (read('MDE_TRANSPORT', 'transport') ?? 'stdio').toLowerCase();
  if (transportText !== 'stdio' && transportText !== 'http') problems.push(`MDE_TRANSPORT (--transport) must be "stdio" or "http" (got "${transportText}").`);
  const transport: 'stdio' | 'http' = transportText === 'http' ? 'http' : 'stdio';
  const host = read('MDE_HTTP_HOST', 'host') ?? '127.0.0.1';
  const port = wholeNumber('MDE_HTTP_PORT', 'port', 3000, 0, 65_535);
  const authText = read('MDE_HTTP_AUTH', 'http-auth')?.toLowerCase();
  if (authText !== undefined && authText !== 'entra' && authText !== 'none') problems.push(`MDE_HTTP_AUTH (--http-auth) must be "entra" or "none" (got "${authText}").`);
  // The simulator has no tenant to sign in against: it serves without sign-in, on loopback only.
  const httpAuth: 'entra' | 'none' = authText === 'none' || (authText === undefined && simulator) ? 'none' : 'entra';
  const resourceUrlText = read('MDE_RESOURCE_URL', 'resource-url');
  const resourceUrl =
    resourceUrlText === undefined
      ? undefined
      : checkUrl(resourceUrlText, { names: 'MDE_RESOURCE_URL (--resource-url)', allowHttpLoopback: true, problems });
  const allowedOrigins = list('MDE_ALLOWED_ORIGINS', 'allowed-origins');
  for (const o of allowedOrigins) {
    let ok = false;
    try {
      const u = new URL(o);
      ok = u.origin !== 'null' && u.pathname === '/' && !u.search && !u.hash && !u.username;
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`MDE_ALLOWED_ORIGINS (--allowed-origins) entries must be origins such as https://app.contoso.com (got "${o}").`);
  }
  const http: HttpSettings = {
    host,
    port,
    auth: httpAuth,
    appIdUri: read('MDE_APP_ID_URI', 'app-id-uri') ?? `api://${clientId ?? 'simulator'}`,
    requiredScope: read('MDE_REQUIRED_SCOPE', 'required-scope') ?? 'user_impersonation',
    resourceUrl,
    allowedOrigins,
    allowedHosts: list('MDE_ALLOWED_HOSTS', 'allowed-hosts'),
    appCallerRole: read('MDE_APP_CALLER_ROLE', 'app-caller-role'),
    sessionIdleMs: wholeNumber('MDE_HTTP_SESSION_IDLE_MINUTES', 'session-idle-minutes', 30, 1, 24 * 60) * 60_000,
    maxSessionsPerUser: wholeNumber('MDE_HTTP_MAX_SESSIONS_PER_USER', 'max-sessions-per-user', 10, 1, 100_000),
    shutdownGraceMs: wholeNumber('MDE_HTTP_SHUTDOWN_GRACE_SECONDS', 'shutdown-grace-seconds', 25, 0, 3_600) * 1000,
    tlsCertPath: read('MDE_HTTP_TLS_CERT_PATH', 'tls-cert-path'),
    tlsKeyPath: read('MDE_HTTP_TLS_KEY_PATH', 'tls-key-path'),
  };
  if (transport === 'http') {
    if (httpAuth === 'none' && !isLoopbackHost(host)) {
      problems.push(`MDE_HTTP_AUTH=none serves without sign-in, so it is refused on ${host}: bind to 127.0.0.1 (MDE_HTTP_HOST) or use MDE_HTTP_AUTH=entra.`);
    }
    if (simulator && httpAuth === 'entra') {
      problems.push('The simulator has no tenant to sign in against: with --simulator, use MDE_HTTP_AUTH=none (the default) on a loopback bind.');
    }
    if (httpAuth === 'entra' && !simulator && credential && credential.kind !== 'secret' && credential.kind !== 'certificate') {
      problems.push(
        `Remote mode with Entra sign-in calls Defender On-Behalf-Of each analyst, which needs the app's client secret or certificate; MDE_AUTH_METHOD=${method} cannot exchange tokens.`,
      );
    }
    if (Boolean(http.tlsCertPath) !== Boolean(http.tlsKeyPath)) problems.push('Set both MDE_HTTP_TLS_CERT_PATH and MDE_HTTP_TLS_KEY_PATH, or neither.');
  } else {
    const httpOnly = ['MDE_HTTP_HOST', 'MDE_HTTP_PORT', 'MDE_HTTP_AUTH', 'MDE_RESOURCE_URL', 'MDE_ALLOWED_ORIGINS', 'MDE_APP_CALLER_ROLE', 'MDE_HTTP_TLS_CERT_PATH'].filter((n) => env[n]?.trim());
    if (httpOnly.length > 0) warnings.push(`stdio transport: ignoring ${httpOnly.join(', ')} (they apply to MDE_TRANSPORT=http).`);
  }

  if (problems.length > 0) throw new ConfigProblems(problems);
  return {
    kind: 'run',
    config: {
      target: simulator ? 'simulator' : 'live',
      tenantId: tenantId ?? 'simulator',
      clientId: clientId ?? 'simulator',
      credential,
      authorityHost,
      apiUrl,
      scope,
      httpTimeoutMs,
      confirmation,
      skipConfirmation,
      rateLimit,
      auditLogPath,
      policy,
      readOnly,
      transport,
      http,
    },
    warnings,
  };
}

function checkUrl(
  text: string,
  opts: { names: string; allowHttpLoopback: boolean; problems: string[] },
): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    opts.problems.push(`${opts.names} must be an absolute URL such as https://host (got "${text}").`);
    return text;
  }
  const httpOk = opts.allowHttpLoopback && url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !httpOk) {
    opts.problems.push(
      `${opts.names} must use https${opts.allowHttpLoopback ? ' (plain http is accepted only for localhost/127.0.0.1/::1)' : ''} (got "${text}").`,
    );
  }
  if (url.search || url.hash || url.username || url.password) {
    opts.problems.push(`${opts.names} must not contain a query, fragment or credentials (got "${url.origin}...").`);
  }
  return url.toString().replace(/\/+$/, '');
}

/** Every configuration problem at once, so one restart fixes them all. */
export class ConfigProblems extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Configuration is incomplete or contradictory:\n${problems.map((p) => `  - ${p}`).join('\n')}\nRun with --help to list every setting.`);
    this.name = 'ConfigProblems';
    this.problems = problems;
  }
}
