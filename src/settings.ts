/**
 * Every setting, described once: its environment variable, its flag, its type, the accepted range or
 * words, its default (per cloud where the cloud decides it), and whether it is a secret. This description
 * parses and validates (readSettings), writes --help (helpText), the settings table in docs/configuration.md
 * (settingsMarkdown; `npm run docs` rewrites it, a test fails on drift) and the error messages. Adding a
 * setting is one entry here, plus what it does in config.ts.
 */
import { parseArgs } from 'node:util';
import { StartupError } from './errors.js';

export const CLOUD_NAMES = ['commercial', 'gcc', 'gcc-high', 'dod'] as const;
export type CloudName = (typeof CLOUD_NAMES)[number];
export const REGIONS = ['us', 'eu', 'uk', 'au', 'swa', 'ina', 'aea'] as const;
export const AUTH_METHODS = ['client-credentials', 'managed-identity', 'device-code'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warning', 'error'] as const;
export const TRUE_WORDS = ['1', 'true', 'yes', 'on'] as const;
export const FALSE_WORDS = ['0', 'false', 'no', 'off'] as const;

type PerCloud = Record<CloudName, string>;

export type Setting =
  | { kind: 'text' | 'path' | 'url'; default?: string | PerCloud }
  | { kind: 'secret' }
  | { kind: 'switch' }
  | { kind: 'choice'; choices: readonly string[]; default?: string }
  | { kind: 'number'; min: number; max: number; default?: number; unit?: string }
  | { kind: 'list' };

/**
 * Where a setting applies; given anywhere else it is ignored, with a warning at start that names it:
 * `http` remote mode (MDE_TRANSPORT=http), `two-person` MDE_APPROVAL=two-person, `device-code`
 * MDE_AUTH_METHOD=device-code, `live` a real tenant (not --simulator).
 */
export type SettingMode = 'http' | 'two-person' | 'device-code' | 'live';

type Described = Setting & {
  mode?: SettingMode;
  /** Environment variable; absent for command-line-only switches. */
  env?: string;
  /** Flag, without the dashes; absent for secrets (never on argv, where other users can read it). */
  flag?: string;
  short?: string;
  help: string;
};

const COMMERCIAL_API = 'https://api.security.microsoft.com';
/** Hosts and token audience per cloud: Defender's government-cloud page (see docs/configuration.md on the audiences). */
export const CLOUD_DEFAULTS = {
  apiUrl: { commercial: COMMERCIAL_API, gcc: 'https://api-gcc.securitycenter.microsoft.us', 'gcc-high': 'https://api-gov.securitycenter.microsoft.us', dod: 'https://api-gov.securitycenter.microsoft.us' },
  authorityHost: { commercial: 'https://login.microsoftonline.com', gcc: 'https://login.microsoftonline.com', 'gcc-high': 'https://login.microsoftonline.us', dod: 'https://login.microsoftonline.us' },
  scope: {
    commercial: 'https://api.securitycenter.microsoft.com/.default',
    gcc: 'https://api-gcc.securitycenter.microsoft.us/.default',
    'gcc-high': 'https://api-gov.securitycenter.microsoft.us/.default',
    dod: 'https://api-gov.securitycenter.microsoft.us/.default',
  },
} as const satisfies Record<string, PerCloud>;

/** The app role an approver holds unless MDE_APPROVER_ROLE says otherwise (also the simulated approver's). */
export const DEFAULT_APPROVER_ROLE = 'MDE.Approver';

/** Entra ID issues a device code for 15 minutes; a sign-in never waits longer than this setting's maximum. */
export const DEVICE_CODE_MAX_SECONDS = 900;

const SPEC = {
  tenantId: { mode: 'live', env: 'AZURE_TENANT_ID', flag: 'tenant-id', kind: 'text', help: 'Entra ID tenant: its id (a GUID) or a verified domain such as contoso.onmicrosoft.com (remote mode with Entra sign-in needs the GUID). Required except with managed-identity.' },
  clientId: { mode: 'live', env: 'AZURE_CLIENT_ID', flag: 'client-id', kind: 'text', help: 'Application (client) id of the app registration; with managed-identity, the client id of a user-assigned identity.' },
  clientSecret: { mode: 'live', env: 'AZURE_CLIENT_SECRET', kind: 'secret', help: 'Client secret (environment only); or use a certificate.' },
  certificatePath: { mode: 'live', env: 'AZURE_CLIENT_CERTIFICATE_PATH', flag: 'client-certificate-path', kind: 'path', help: 'PEM file with the private key and its certificate, instead of a secret; checked at start (readable, key matches certificate).' },
  certificatePassword: { env: 'AZURE_CLIENT_CERTIFICATE_PASSWORD', kind: 'secret', help: 'Password of an encrypted private key in that PEM file (environment only).' },
  authMethod: {
    env: 'MDE_AUTH_METHOD',
    flag: 'auth-method',
    kind: 'choice',
    choices: AUTH_METHODS,
    default: 'client-credentials',
    help: 'client-credentials (a secret or a certificate), managed-identity (in Azure), or device-code (sign in as a person).',
  },
  deviceCodeTimeoutSeconds: {
    mode: 'device-code',
    env: 'MDE_DEVICE_CODE_TIMEOUT_SECONDS',
    flag: 'device-code-timeout-seconds',
    kind: 'number',
    min: 30,
    max: DEVICE_CODE_MAX_SECONDS,
    default: DEVICE_CODE_MAX_SECONDS,
    unit: 's',
    help: 'device-code only: how long a sign-in waits for the person to enter the code before it fails (Entra ID\'s codes expire after 15 minutes anyway). The tool call that started it may end sooner (client timeouts); the sign-in goes on, and a later call uses it.',
  },
  tokenCachePath: { mode: 'device-code', env: 'MDE_TOKEN_CACHE_PATH', flag: 'token-cache-path', kind: 'path', help: 'device-code only: keep the signed-in session in this file (mode 0600) across restarts; memory only when unset.' },
  cloud: { env: 'MDE_CLOUD', flag: 'cloud', kind: 'choice', choices: CLOUD_NAMES, default: 'commercial', help: 'Picks the API host, sign-in host and token scope together (their defaults below).' },
  region: { env: 'MDE_REGION', flag: 'region', kind: 'choice', choices: REGIONS, help: 'Commercial cloud only: the regional API host https://<region>.api.security.microsoft.com.' },
  authorityHost: { env: 'AZURE_AUTHORITY_HOST', flag: 'authority-host', kind: 'url', default: CLOUD_DEFAULTS.authorityHost, help: 'Entra ID sign-in host, https only.' },
  apiUrl: { mode: 'live', env: 'MDE_API_URL', flag: 'api-url', kind: 'url', default: CLOUD_DEFAULTS.apiUrl, help: 'Defender API base URL (with or without /api); plain http only for loopback hosts.' },
  scope: { env: 'MDE_SCOPE', flag: 'scope', kind: 'text', default: CLOUD_DEFAULTS.scope, help: 'Token scope (audience + /.default).' },
  httpTimeoutMs: { env: 'MDE_HTTP_TIMEOUT_MS', flag: 'http-timeout-ms', kind: 'number', min: 100, max: 600_000, default: 30_000, unit: 'ms', help: 'Timeout of each HTTP request (Defender, and each client-credentials or managed-identity sign-in).' },
  confirmation: {
    env: 'MDE_CONFIRMATION',
    flag: 'confirmation',
    kind: 'choice',
    choices: ['auto', 'elicitation'],
    default: 'auto',
    help: 'auto: ask through elicitation, else through a confirmation token; elicitation: only elicitation, fail closed.',
  },
  simulator: { env: 'MDE_SIMULATOR', flag: 'simulator', kind: 'switch', help: 'Serve the tools against the embedded Defender simulator; no credentials needed.' },
  rateLimitPerMinute: { env: 'MDE_RATE_LIMIT_PER_MINUTE', flag: 'rate-limit-per-minute', kind: 'number', min: 1, max: 1_000_000, default: 100, help: 'Defender calls allowed in any rolling minute, for this process (100 is Defender\'s budget per app).' },
  rateLimitPerHour: { env: 'MDE_RATE_LIMIT_PER_HOUR', flag: 'rate-limit-per-hour', kind: 'number', min: 1, max: 100_000_000, default: 1500, help: 'Defender calls allowed in any rolling hour (1,500 is Defender\'s budget); not below the per-minute value.' },
  rateLimitMaxWaitMs: { env: 'MDE_RATE_LIMIT_MAX_WAIT_MS', flag: 'rate-limit-max-wait-ms', kind: 'number', min: 0, max: 3_600_000, default: 20_000, unit: 'ms', help: 'How long a call may wait for the budget before it fails with the time it frees up.' },
  rateLimitPerUserPerMinute: {
    mode: 'http',
    env: 'MDE_RATE_LIMIT_PER_USER_PER_MINUTE',
    flag: 'rate-limit-per-user-per-minute',
    kind: 'number',
    min: 0,
    max: 1_000_000,
    default: 0,
    help: 'HTTP mode: Defender calls one signed-in user may make in any rolling minute, so one analyst\'s agent cannot spend the whole budget (across replicas with MDE_REDIS_URL). 0: no per-user share.',
  },
  redisUrl: {
    env: 'MDE_REDIS_URL',
    flag: 'redis-url',
    kind: 'url',
    help: 'Run several replicas: they share the API budget, spent confirmation tokens and one write per device through this Redis: redis://host:6379, rediss://host:6380 (TLS) or unix:///path/to/redis.sock. A password in the URL only through the environment variable. Unset: this process keeps its own.',
  },
  confirmationKey: {
    env: 'MDE_CONFIRMATION_KEY',
    kind: 'secret',
    help: 'The key that signs confirmation tokens: base64 of at least 32 random bytes (openssl rand -base64 32). Required with MDE_REDIS_URL, so every replica signs and checks alike; never stored in Redis. Refused without MDE_REDIS_URL: the spent tokens would be remembered by one process only. Unset: a random key per process.',
  },
  confirmationKeyPrevious: {
    env: 'MDE_CONFIRMATION_KEY_PREVIOUS',
    kind: 'secret',
    help: 'During a key rotation, the previous MDE_CONFIRMATION_KEY: tokens it signed are still accepted until they expire; it never signs.',
  },
  auditLog: {
    env: 'MDE_AUDIT_LOG',
    flag: 'audit-log',
    kind: 'path',
    help: 'JSON Lines audit file, appended to (created with mode 0600): a record flushed before and after every write. Checked at start: a path that cannot be written stops the server; if writing fails later, writes are refused and reads go on.',
  },
  allowDeviceGroups: { env: 'MDE_ALLOW_DEVICE_GROUPS', flag: 'allow-device-groups', kind: 'list', help: 'Device groups (rbacGroupName) the write tools may touch; others, and devices without a group, are refused. Comma-separated, or a JSON array for names with commas: ["Finance, EMEA","HR"].' },
  denyDeviceGroups: { env: 'MDE_DENY_DEVICE_GROUPS', flag: 'deny-device-groups', kind: 'list', help: 'Device groups the write tools must never touch (comma-separated, or a JSON array). With any group rule set, a device without a group is refused.' },
  allowTags: { env: 'MDE_ALLOW_TAGS', flag: 'allow-tags', kind: 'list', help: 'Machine tags (comma-separated, or a JSON array): a device must carry at least one of them.' },
  denyTags: { env: 'MDE_DENY_TAGS', flag: 'deny-tags', kind: 'list', help: 'Machine tags (comma-separated, or a JSON array): a device carrying any of them is refused. With any tag rule set, a device whose tags Defender did not send is refused.' },
  commentPattern: { env: 'MDE_COMMENT_PATTERN', flag: 'comment-pattern', kind: 'text', help: 'A regular expression (RE2 syntax, linear time) that must match somewhere in every comment; anchor it to require the whole comment, e.g. "^INC-\\d+: .+$".' },
  readOnly: { env: 'MDE_READ_ONLY', flag: 'read-only', kind: 'switch', help: 'Register only the read-only tools: the write tools do not exist for clients.' },
  logLevel: {
    env: 'MDE_LOG_LEVEL',
    flag: 'log-level',
    kind: 'choice',
    choices: LOG_LEVELS,
    default: 'info',
    help: 'What goes to stderr. debug adds MSAL\'s own lines. DEBUG and --verbose are not read.',
  },
  logFormat: {
    env: 'MDE_LOG_FORMAT',
    flag: 'log-format',
    kind: 'choice',
    choices: ['text', 'json'],
    default: 'text',
    help: 'text: human-readable lines. json: one JSON object per line (time, level, message, and the call\'s requestId, tool, user and session where known), for log shippers. Redacted alike.',
  },
  metricsPort: {
    env: 'MDE_METRICS_PORT',
    flag: 'metrics-port',
    kind: 'number',
    min: 0,
    max: 65_535,
    help: 'Serve Prometheus metrics at http://<MDE_METRICS_HOST>:<port>/metrics, on a listener of their own (either transport); 0 picks a free port (named on stderr). Unset: no metrics, and prom-client is never loaded.',
  },
  metricsHost: {
    env: 'MDE_METRICS_HOST',
    flag: 'metrics-host',
    kind: 'text',
    default: '127.0.0.1',
    help: 'The metrics listener\'s bind address. /metrics has no authentication: any other than loopback warns; expose it only to your scraper.',
  },
  transport: {
    env: 'MDE_TRANSPORT',
    flag: 'transport',
    kind: 'choice',
    choices: ['stdio', 'http'],
    default: 'stdio',
    help: 'stdio: a client spawns the server. http: remote mode, MCP Streamable HTTP at /mcp, every caller signed in with Entra ID and Defender called On-Behalf-Of each.',
  },
  httpHost: { mode: 'http', env: 'MDE_HTTP_HOST', flag: 'host', kind: 'text', default: '127.0.0.1', help: 'http: the bind address. Any other than loopback warns unless TLS is served here (terminate it in front).' },
  httpPort: { mode: 'http', env: 'MDE_HTTP_PORT', flag: 'port', kind: 'number', min: 0, max: 65_535, default: 3000, help: 'http: the port; 0 picks a free one. The start-up line on stderr names the endpoint as http://<host>:<port>/mcp.' },
  httpAuth: {
    mode: 'http',
    env: 'MDE_HTTP_AUTH',
    flag: 'http-auth',
    kind: 'choice',
    choices: ['entra', 'none', 'simulated-users'],
    help: 'http: entra (every caller signs in; the default), none (no sign-in: refused at start on any bind but loopback; the default with --simulator), or simulated-users (--simulator only, loopback only: stand-in analysts for trying MDE_APPROVAL=two-person, see npm run demo:approval).',
  },
  appIdUri: { mode: 'http', env: 'MDE_APP_ID_URI', flag: 'app-id-uri', kind: 'text', help: 'http: the API\'s Application ID URI (default api://<AZURE_CLIENT_ID>); tokens for it or for the client id are accepted. Make it the resource URL.' },
  requiredScope: { mode: 'http', env: 'MDE_REQUIRED_SCOPE', flag: 'required-scope', kind: 'text', default: 'user_impersonation', help: 'http: the delegated scope every user token must carry (its short name, as in the scp claim).' },
  resourceUrl: { mode: 'http', env: 'MDE_RESOURCE_URL', flag: 'resource-url', kind: 'url', help: 'http: the endpoint\'s public URL as clients see it (default http://<host>:<port>/mcp; behind a proxy, the proxy\'s URL).' },
  allowedOrigins: { mode: 'http', env: 'MDE_ALLOWED_ORIGINS', flag: 'allowed-origins', kind: 'list', help: 'http: browser origins allowed to call (e.g. https://app.contoso.com); a request with any other Origin gets 403. None by default.' },
  allowedHosts: { mode: 'http', env: 'MDE_ALLOWED_HOSTS', flag: 'allowed-hosts', kind: 'list', help: 'http: Host names accepted besides the bind address and the resource URL\'s host (DNS rebinding protection).' },
  appCallerRole: { mode: 'http', env: 'MDE_APP_CALLER_ROLE', flag: 'app-caller-role', kind: 'text', help: 'http: the app role an app-only (client-credential) caller must carry; it then acts with this server\'s own identity. Unset: app-only callers are refused.' },
  tokenReuseSeconds: {
    mode: 'http',
    env: 'MDE_HTTP_TOKEN_REUSE_SECONDS',
    flag: 'token-reuse-seconds',
    kind: 'number',
    min: 0,
    max: 300,
    default: 300,
    unit: 's',
    help: "http: a caller's token that passed every check is taken as checked for this long, never past its expiry (clients send the same token with every request). 0 checks its signature and claims on every request.",
  },
  sessionIdleMinutes: { mode: 'http', env: 'MDE_HTTP_SESSION_IDLE_MINUTES', flag: 'session-idle-minutes', kind: 'number', min: 1, max: 1440, default: 30, unit: 'min', help: 'http: sessions without a request for this long are closed.' },
  maxSessionsPerUser: { mode: 'http', env: 'MDE_HTTP_MAX_SESSIONS_PER_USER', flag: 'max-sessions-per-user', kind: 'number', min: 1, max: 100_000, default: 10, help: 'http: sessions one user may hold at once; one more is refused with a clear error.' },
  shutdownGraceSeconds: { mode: 'http', env: 'MDE_HTTP_SHUTDOWN_GRACE_SECONDS', flag: 'shutdown-grace-seconds', kind: 'number', min: 0, max: 3600, default: 25, unit: 's', help: 'http: on SIGTERM, how long calls in flight may take to finish before the server exits.' },
  tlsCertPath: { mode: 'http', env: 'MDE_HTTP_TLS_CERT_PATH', flag: 'tls-cert-path', kind: 'path', help: 'http: PEM certificate (chain) to serve HTTPS here, with MDE_HTTP_TLS_KEY_PATH.' },
  tlsKeyPath: { mode: 'http', env: 'MDE_HTTP_TLS_KEY_PATH', flag: 'tls-key-path', kind: 'path', help: 'http: PEM private key of that certificate.' },
  approval: {
    env: 'MDE_APPROVAL',
    flag: 'approval',
    kind: 'choice',
    choices: ['none', 'two-person'],
    default: 'none',
    help: 'two-person: lifting a restriction waits until a second signed-in analyst (another user, holding MDE_APPROVER_ROLE) approves it. Needs MDE_TRANSPORT=http with Entra sign-in; refused at start otherwise.',
  },
  approvalDeviceGroups: { mode: 'two-person', env: 'MDE_APPROVAL_DEVICE_GROUPS', flag: 'approval-device-groups', kind: 'list', help: 'two-person: only devices in these device groups (or carrying an MDE_APPROVAL_TAGS tag) need an approval. Neither set: every device.' },
  approvalTags: { mode: 'two-person', env: 'MDE_APPROVAL_TAGS', flag: 'approval-tags', kind: 'list', help: 'two-person: only devices carrying one of these tags (or in an MDE_APPROVAL_DEVICE_GROUPS group) need an approval.' },
  approvalTtlMinutes: { mode: 'two-person', env: 'MDE_APPROVAL_TTL_MINUTES', flag: 'approval-ttl-minutes', kind: 'number', min: 1, max: 10_080, default: 60, unit: 'min', help: 'two-person: a request not decided within this time expires and can no longer be approved.' },
  approverRole: { mode: 'two-person', env: 'MDE_APPROVER_ROLE', flag: 'approver-role', kind: 'text', default: DEFAULT_APPROVER_ROLE, help: 'two-person: the app role (in the token\'s roles claim) an approver must hold.' },
  skipConfirmation: { flag: 'dangerously-skip-confirmation', kind: 'switch', help: 'Turn the confirmation gate off, for automation with its own approvals. Warns on every call. No environment twin.' },
  help: { flag: 'help', short: 'h', kind: 'switch', help: 'Print this help and exit.' },
  version: { flag: 'version', kind: 'switch', help: 'Print the version and exit.' },
} as const satisfies Record<string, Described>;

export type SettingKey = keyof typeof SPEC;
/** `secret`: never on argv, never in a log, an error or a result. */
export type DescribedSetting = Described & { key: SettingKey; secret: boolean };
/** Every setting, in the order --help and docs/configuration.md list them. */
export const SETTINGS: readonly DescribedSetting[] = Object.entries(SPEC).map(([key, s]) => ({
  key: key as SettingKey,
  secret: s.kind === 'secret',
  ...(s as Described),
}));

type ValueOf<S> = S extends { kind: 'switch' }
  ? boolean
  : S extends { kind: 'text' | 'path' | 'url'; default: string }
    ? string
  : S extends { kind: 'number'; default: number }
    ? number
    : S extends { kind: 'number' }
      ? number | undefined
    : S extends { kind: 'list' }
      ? string[]
      : S extends { kind: 'choice'; choices: readonly (infer C)[]; default: string }
        ? C
        : S extends { kind: 'choice'; choices: readonly (infer C)[] }
          ? C | undefined
          : string | undefined;
/** What was given, typed by its description; `given` says which were set at all. */
export type SettingValues = { -readonly [K in SettingKey]: ValueOf<(typeof SPEC)[K]> } & { given: ReadonlySet<SettingKey> };

/** How a setting is named in a message: the variable and the flag, as the user may have set either. */
export function names(s: { env?: string; flag?: string }): string {
  if (s.env && s.flag) return `${s.env} (--${s.flag})`;
  return s.env ?? `--${s.flag}`;
}
export const named = (key: SettingKey) => names(SPEC[key]);

function accepted(s: Setting): string {
  if (s.kind === 'choice') return s.choices.length === 2 ? `"${s.choices[0]}" or "${s.choices[1]}"` : `one of ${s.choices.join(', ')}`;
  if (s.kind === 'number') return `a whole number from ${s.min} to ${s.max}`;
  if (s.kind === 'switch') return `${TRUE_WORDS.join(', ')} (on) or ${FALSE_WORDS.join(', ')}, empty (off)`;
  return '';
}

/** Read and check every described setting from argv and the environment. Flags win. Pure. */
export function readSettings(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { values: SettingValues; problems: string[] } {
  const problems: string[] = [];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const s of SETTINGS) if (s.flag) options[s.flag] = { type: s.kind === 'switch' ? 'boolean' : 'string', ...(s.short ? { short: s.short } : {}) };

  const unknown: string[] = [];
  const valueless: DescribedSetting[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '--') continue;
    const known = findFlag(arg.replace(/=.*$/, ''));
    if (!known) unknown.push(arg.replace(/=.*$/, ''));
    else if (known.kind !== 'switch' && !arg.includes('=')) {
      // A value that starts with '-' is written --flag=VALUE (the parser would take it for a flag).
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) valueless.push(known);
      if (next !== undefined && !(next.startsWith('-') && findFlag(next.replace(/=.*$/, '')))) i++; // not one of ours: this flag's would-be value
    }
  }
  for (const flag of unknown) problems.push(unknownFlag(flag));
  for (const s of valueless) {
    problems.push(`--${s.flag} needs a value${accepted(s) ? `: ${accepted(s)}` : ''} (--${s.flag} VALUE; one that starts with "-" is written --${s.flag}=-XYZ). Run with --help to list every setting.`);
  }
  let flags: Record<string, string | boolean | undefined> = {};
  if (problems.length === 0) {
    try {
      flags = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
    } catch (error) {
      problems.push(`${error instanceof Error ? error.message : String(error)} Run with --help to list every setting.`);
    }
  }

  // An argv that cannot be read says nothing reliable about the rest: report only that.
  if (problems.length > 0) throw new StartupError(problems);

  const values: Record<string, unknown> = {};
  const given = new Set<SettingKey>();
  for (const s of SETTINGS) {
    const fromFlag = s.flag ? flags[s.flag] : undefined;
    // Secrets are not trimmed: a secret may legitimately end with a space, however unlikely.
    const fromEnv = s.env ? (s.kind === 'secret' ? env[s.env] : env[s.env]?.trim()) : undefined;
    const text = typeof fromFlag === 'string' ? fromFlag.trim() : fromEnv === '' ? undefined : fromEnv;
    if (fromFlag !== undefined || text !== undefined) given.add(s.key);
    values[s.key] = convert(s, fromFlag === true ? true : text, problems);
  }
  return { values: { ...(values as Omit<SettingValues, 'given'>), given }, problems };
}

function convert(s: DescribedSetting, raw: string | true | undefined, problems: string[]): unknown {
  const fail = (got: string) => problems.push(`${names(s)} must be ${accepted(s)} (got "${got}").`);
  switch (s.kind) {
    case 'switch': {
      if (raw === true || raw === undefined) return raw === true;
      const word = raw.toLowerCase();
      if ((TRUE_WORDS as readonly string[]).includes(word)) return true;
      if (!(FALSE_WORDS as readonly string[]).includes(word)) fail(raw);
      return false;
    }
    case 'number': {
      if (typeof raw !== 'string') return s.default;
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < s.min || n > s.max) {
        fail(raw);
        return s.default;
      }
      return n;
    }
    case 'choice': {
      if (typeof raw !== 'string') return s.default;
      const word = raw.toLowerCase();
      if (s.choices.includes(word)) return word;
      fail(word);
      return s.default;
    }
    case 'list':
      return typeof raw === 'string' ? parseList(raw, () => problems.push(`${names(s)} must be comma-separated names, or a JSON array of strings for names that contain a comma (got "${raw}").`)) : [];
    default:
      return typeof raw === 'string' ? raw : 'default' in s && typeof s.default === 'string' ? s.default : undefined;
  }
}

/** The settings of this mode that were given: what a start outside that mode ignores (named as in a message). */
export function givenOfMode(mode: SettingMode, given: ReadonlySet<SettingKey>): string[] {
  return SETTINGS.filter((s) => s.mode === mode && given.has(s.key)).map((s) => names(s).split(' ')[0]!);
}

/** `a, b` or, for names that contain a comma, a JSON array: `["Finance, EMEA", "HR"]`. */
export function parseList(raw: string, fail: () => void): string[] {
  if (raw.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed.map((x) => x.trim()).filter((x) => x !== '');
    } catch {
      // reported below
    }
    fail();
    return [];
  }
  return raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

function findFlag(arg: string): DescribedSetting | undefined {
  if (/^-[^-]$/.test(arg)) return SETTINGS.find((s) => s.short === arg.slice(1));
  return arg.startsWith('--') ? SETTINGS.find((s) => s.flag === arg.slice(2)) : undefined;
}

/** One message for an unknown flag, naming the nearest known one (or saying a secret has no flag). */
function unknownFlag(flag: string): string {
  const name = flag.replace(/^-+/, '');
  const secret = SETTINGS.find((s) => s.kind === 'secret' && s.env?.toLowerCase().replace(/^azure_/, '').replace(/_/g, '-') === name.toLowerCase());
  if (secret) return `${flag} does not exist: ${secret.env} is read only from the environment, so it never shows in a process list. Run with --help to list every setting.`;
  if (/^(verbose|debug|v)$/i.test(name)) return `Unknown flag ${flag}. Did you mean --log-level debug? Run with --help to list every setting.`;
  let best: { flag: string; distance: number } | undefined;
  for (const s of SETTINGS) {
    if (!s.flag) continue;
    const d = distance(name, s.flag);
    if (!best || d < best.distance) best = { flag: s.flag, distance: d };
  }
  const hint = best && best.distance <= Math.max(2, Math.floor(name.length / 3)) ? ` Did you mean --${best.flag}?` : '';
  return `Unknown flag ${flag}.${hint} Run with --help to list every setting.`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

function defaultText(s: Setting): string | undefined {
  if (s.kind === 'switch') return 'off';
  if (s.kind === 'number') return s.default === undefined ? 'off' : `${s.default.toLocaleString('en-US')}${s.unit ? ` ${s.unit}` : ''}`;
  if (s.kind === 'choice' || s.kind === 'text' || s.kind === 'path' || s.kind === 'url') {
    const d = s.default;
    if (d === undefined) return undefined;
    return typeof d === 'string' ? d : CLOUD_NAMES.map((c) => `${c}: ${d[c]}`).join('; ');
  }
  return undefined;
}

/** What a setting accepts, in words: the words, the range, the kind of value. */
function acceptedText(s: Setting & { env?: string }): string {
  switch (s.kind) {
    case 'choice':
      return s.choices.join(', ');
    case 'number':
      return `${s.min.toLocaleString('en-US')} to ${s.max.toLocaleString('en-US')}${s.unit ? ` ${s.unit}` : ''}`;
    case 'switch':
      return s.env ? `flag; or ${TRUE_WORDS.join('/')} (on), ${FALSE_WORDS.join('/')} or empty (off)` : 'flag';
    case 'list':
      return 'comma-separated, or a JSON array';
    case 'secret':
      return 'secret, environment only';
    default:
      return s.kind === 'url' ? 'URL' : s.kind === 'path' ? 'file path' : 'text';
  }
}

export function helpText(): string {
  const rows = SETTINGS.map((s) => {
    const flag = s.flag ? `${s.short ? `-${s.short}, ` : ''}--${s.flag}${s.kind === 'switch' ? '' : ' VALUE'}` : undefined;
    const d = s.key === 'help' || s.key === 'version' ? undefined : defaultText(s);
    return [`  ${[s.env, flag].filter(Boolean).join(' | ')}`, `      ${s.help}`, `      Accepts: ${acceptedText(s)}.${d ? ` Default: ${d}.` : ''}`].join('\n');
  });
  return [
    'mde-app-restriction-mcp: an MCP server (stdio, or Streamable HTTP with --transport http) that lifts the',
    'app-execution restriction on a device through Microsoft Defender for Endpoint, after a human confirms.',
    '',
    'Usage: mde-app-restriction-mcp [flags]',
    '       mde-app-restriction-mcp --simulator     (try it without a tenant)',
    '       mde-app-restriction-mcp --simulator --transport http     (remote mode on http://127.0.0.1:3000/mcp)',
    '',
    'Settings (environment variable | flag; the flag wins; secrets have no flag):',
    ...rows,
    '',
    'Credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH.',
  ].join('\n');
}

/** The settings table of docs/configuration.md (between the settings markers), from the same description. */
export function settingsMarkdown(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows = SETTINGS.filter((s) => s.key !== 'help' && s.key !== 'version').map((s) => {
    const d = s.kind === 'secret' ? '' : (defaultText(s) ?? '');
    const dflt = d.includes('; ') ? d.split('; ').map((x) => `${x.split(': ')[0]}: \`${x.split(': ')[1]}\``).join('<br>') : d ? `\`${d}\`` : '';
    return `| ${s.env ? `\`${s.env}\`` : '(flag only)'} | ${s.flag ? `\`--${s.flag}\`` : '(environment only)'} | ${cell(acceptedText(s))} | ${dflt} | ${cell(s.help)} |`;
  });
  return ['| Environment variable | Flag | Accepts | Default | Meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
