/**
 * Configuration: environment variables and their twin CLI flags, parsed and validated in one pure place.
 * Flags win over the environment. Secrets (client secret, certificate password) are read only from the
 * environment, never from argv, where other users of the machine could see them.
 */
import { parseArgs } from 'node:util';
import { StartupError } from './errors.js';

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
    throw new StartupError([`${reason}. Run with --help to list every flag.`]);
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

  if (problems.length > 0) throw new StartupError(problems);
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

