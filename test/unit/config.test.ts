import { describe, expect, it } from 'vitest';
import { SETTINGS, helpText, parseConfig } from '../../src/config.js';
import { CLOUD_DEFAULTS } from '../../src/settings.js';
import { compileCommentPattern } from '../../src/comment-pattern.js';
import { StartupError } from '../../src/errors.js';

const LIVE = { AZURE_TENANT_ID: 'contoso.onmicrosoft.com', AZURE_CLIENT_ID: 'client-1', AZURE_CLIENT_SECRET: 's3cret-value' };

function run(argv: string[], env: Record<string, string | undefined>) {
  const r = parseConfig(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r;
}
function problems(argv: string[], env: Record<string, string | undefined>): string[] {
  try {
    parseConfig(argv, env);
  } catch (error) {
    if (error instanceof StartupError) return [...error.problems];
    throw error;
  }
  throw new Error('expected StartupError');
}

describe('parseConfig', () => {
  it('applies the defaults for a client-secret setup', () => {
    const { config, warnings } = run([], LIVE);
    expect(config).toEqual({
      target: 'live',
      tenantId: 'contoso.onmicrosoft.com',
      clientId: 'client-1',
      credential: { kind: 'secret', secret: 's3cret-value' },
      authorityHost: CLOUD_DEFAULTS.authorityHost.commercial,
      apiUrl: CLOUD_DEFAULTS.apiUrl.commercial,
      scope: 'https://api.securitycenter.microsoft.com/.default',
      httpTimeoutMs: 30_000,
      confirmation: 'auto',
      skipConfirmation: false,
      rateLimit: { perMinute: 100, perHour: 1500, maxWaitMs: 20_000 },
      auditLogPath: undefined,
      policy: { allowDeviceGroups: [], denyDeviceGroups: [], allowTags: [], denyTags: [], commentPattern: undefined },
      readOnly: false,
      logLevel: 'info',
      logFormat: 'text',
      metrics: { port: undefined, host: '127.0.0.1' },
      transport: 'stdio',
      http: {
        host: '127.0.0.1',
        port: 3000,
        auth: 'entra',
        appIdUri: 'api://client-1',
        requiredScope: 'user_impersonation',
        resourceUrl: undefined,
        allowedOrigins: [],
        allowedHosts: [],
        appCallerRole: undefined,
        tokenReuseMs: 300_000,
        sessionIdleMs: 30 * 60_000,
        maxSessionsPerUser: 10,
        shutdownGraceMs: 25_000,
        tlsCertPath: undefined,
        tlsKeyPath: undefined,
      },
    });
    expect(warnings).toEqual([]);
  });

  it('parses the rate budget, audit log, policy guards and read-only mode', async () => {
    const { config } = run(['--read-only', '--deny-tags', 'Production, Tier0 ,'], {
      ...LIVE,
      MDE_RATE_LIMIT_PER_MINUTE: '50',
      MDE_RATE_LIMIT_PER_HOUR: '700',
      MDE_RATE_LIMIT_MAX_WAIT_MS: '0',
      MDE_AUDIT_LOG: '/var/log/mde/audit.jsonl',
      MDE_ALLOW_DEVICE_GROUPS: 'Finance Workstations,HR',
      MDE_COMMENT_PATTERN: 'INC-\\d+',
    });
    expect(config.rateLimit).toEqual({ perMinute: 50, perHour: 700, maxWaitMs: 0 });
    expect(config.auditLogPath).toBe('/var/log/mde/audit.jsonl');
    expect(config.policy.allowDeviceGroups).toEqual(['Finance Workstations', 'HR']);
    expect(config.policy.denyTags).toEqual(['Production', 'Tier0']);
    expect(config.policy.commentPattern).toBe('INC-\\d+');
    expect((await compileCommentPattern(config.policy.commentPattern!)).test('INC-42 cleaned')).toBe(true);
    expect(config.readOnly).toBe(true);
    expect(run([], { ...LIVE, MDE_READ_ONLY: 'true' }).config.readOnly).toBe(true);
  });

  it('refuses a bad rate budget or comment pattern', () => {
    expect(problems([], { ...LIVE, MDE_RATE_LIMIT_PER_MINUTE: '0' })[0]).toMatch(/MDE_RATE_LIMIT_PER_MINUTE/);
    expect(problems([], { ...LIVE, MDE_RATE_LIMIT_PER_MINUTE: '200', MDE_RATE_LIMIT_PER_HOUR: '100' })[0]).toMatch(/not be smaller/);
    expect(problems([], { ...LIVE, MDE_COMMENT_PATTERN: 'INC-(' })[0]).toMatch(/not a valid regular expression/);
  });

  it('lets flags win over the environment', () => {
    const { config } = run(
      ['--tenant-id', 'fabrikam.onmicrosoft.com', '--api-url', 'http://127.0.0.1:8080/', '--http-timeout-ms', '1500', '--confirmation', 'elicitation', '--authority-host', 'https://login.microsoftonline.us/'],
      { ...LIVE, MDE_API_URL: 'https://eu.api.security.microsoft.com', MDE_CONFIRMATION: 'auto' },
    );
    expect(config.tenantId).toBe('fabrikam.onmicrosoft.com');
    expect(config.apiUrl).toBe('http://127.0.0.1:8080');
    expect(config.authorityHost).toBe('https://login.microsoftonline.us');
    expect(config.httpTimeoutMs).toBe(1500);
    expect(config.confirmation).toBe('elicitation');
  });

  it('takes a certificate with an optional password', () => {
    const { config } = run([], {
      AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      AZURE_CLIENT_ID: 'c',
      AZURE_CLIENT_CERTIFICATE_PATH: '/etc/app.pem',
      AZURE_CLIENT_CERTIFICATE_PASSWORD: 'pw',
    });
    expect(config.credential).toEqual({ kind: 'certificate', path: '/etc/app.pem', password: 'pw' });
  });

  it('names every missing setting with its variable and flag at once', () => {
    const p = problems([], {});
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/AZURE_TENANT_ID.*--tenant-id/);
    expect(p[1]).toMatch(/AZURE_CLIENT_ID.*--client-id/);
    expect(p[2]).toMatch(/AZURE_CLIENT_SECRET.*AZURE_CLIENT_CERTIFICATE_PATH.*--simulator/);
  });

  it('refuses contradictory and invalid settings', () => {
    expect(problems([], { ...LIVE, AZURE_CLIENT_CERTIFICATE_PATH: '/x.pem' })[0]).toMatch(/keep exactly one/);
    expect(problems([], { ...LIVE, MDE_API_URL: 'http://api.example.com' })[0]).toMatch(/MDE_API_URL.*https.*loopback|localhost/);
    expect(problems([], { ...LIVE, AZURE_AUTHORITY_HOST: 'http://127.0.0.1:1' })[0]).toMatch(/AZURE_AUTHORITY_HOST.*https/);
    expect(problems([], { ...LIVE, MDE_API_URL: 'not a url' })[0]).toMatch(/absolute URL/);
    expect(problems([], { ...LIVE, MDE_HTTP_TIMEOUT_MS: '10s' })[0]).toMatch(/MDE_HTTP_TIMEOUT_MS/);
    expect(problems([], { ...LIVE, MDE_CONFIRMATION: 'never' })[0]).toMatch(/"auto" or "elicitation"/);
    expect(problems(['--dangerously-skip-confirmation'], { ...LIVE, MDE_CONFIRMATION: 'elicitation' })[0]).toMatch(/contradicts/);
    expect(problems(['--client-secret', 'x'], LIVE)[0]).toMatch(/--help/);
    expect(problems([], { ...LIVE, MDE_SIMULATOR: 'maybe' })[0]).toMatch(/MDE_SIMULATOR/);
  });

  it('takes the API base URL with or without the /api prefix', () => {
    expect(run([], { ...LIVE, MDE_API_URL: 'https://eu.api.security.microsoft.com/api/' }).config.apiUrl).toBe('https://eu.api.security.microsoft.com');
    expect(run([], { ...LIVE, MDE_API_URL: 'http://127.0.0.1:8080/api/v1.0' }).config.apiUrl).toBe('http://127.0.0.1:8080');
    expect(run([], { ...LIVE, MDE_API_URL: 'http://127.0.0.1:8080/proxy' }).config.apiUrl).toBe('http://127.0.0.1:8080/proxy');
  });

  it('accepts http only for loopback hosts', () => {
    for (const url of ['http://localhost:1', 'http://127.0.0.1:2', 'http://[::1]:3']) {
      expect(run([], { ...LIVE, MDE_API_URL: url }).config.apiUrl).toBe(url);
    }
  });

  it('needs no credentials in simulator mode, from the flag or MDE_SIMULATOR=1, and warns about ignored ones', () => {
    expect(run(['--simulator'], {}).config.target).toBe('simulator');
    expect(run([], { MDE_SIMULATOR: '1' }).config.target).toBe('simulator');
    expect(run([], { MDE_SIMULATOR: '0', ...LIVE }).config.target).toBe('live');
    expect(run(['--simulator'], LIVE).warnings[0]).toMatch(/ignoring AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET/);
  });

  it('keeps secrets out of argv: there is no flag for the secret, the certificate password or the confirmation keys', () => {
    const secrets = SETTINGS.filter((s) => s.secret);
    expect(secrets.map((s) => s.env)).toEqual(['AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PASSWORD', 'MDE_CONFIRMATION_KEY', 'MDE_CONFIRMATION_KEY_PREVIOUS']);
    expect(secrets.map((s) => s.flag)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('answers --help with every variable and flag, and --version', () => {
    const r = parseConfig(['--help'], {});
    expect(r.kind).toBe('help');
    const text = helpText();
    for (const s of SETTINGS) {
      if (s.env) expect(text).toContain(s.env);
      if (s.flag) expect(text).toContain(`--${s.flag}`);
    }
    expect(parseConfig(['--version'], {}).kind).toBe('version');
  });

  it.each([
    ['commercial', 'https://api.security.microsoft.com', 'https://login.microsoftonline.com', 'https://api.securitycenter.microsoft.com/.default'],
    ['gcc', 'https://api-gcc.securitycenter.microsoft.us', 'https://login.microsoftonline.com', 'https://api-gcc.securitycenter.microsoft.us/.default'],
    ['gcc-high', 'https://api-gov.securitycenter.microsoft.us', 'https://login.microsoftonline.us', 'https://api-gov.securitycenter.microsoft.us/.default'],
    ['dod', 'https://api-gov.securitycenter.microsoft.us', 'https://login.microsoftonline.us', 'https://api-gov.securitycenter.microsoft.us/.default'],
  ])('MDE_CLOUD=%s picks the API host, authority and scope together', (cloud, apiUrl, authorityHost, scope) => {
    const { config } = run([], { ...LIVE, MDE_CLOUD: cloud });
    expect({ apiUrl: config.apiUrl, authorityHost: config.authorityHost, scope: config.scope }).toEqual({ apiUrl, authorityHost, scope });
    expect(run(['--cloud', cloud.toUpperCase()], LIVE).config.apiUrl).toBe(apiUrl);
  });

  it('MDE_REGION picks the regional commercial host; explicit settings win over the cloud', () => {
    for (const region of ['us', 'eu', 'uk', 'au', 'swa', 'ina']) {
      expect(run([], { ...LIVE, MDE_REGION: region }).config.apiUrl).toBe(`https://${region}.api.security.microsoft.com`);
    }
    const { config } = run([], {
      ...LIVE,
      MDE_CLOUD: 'gcc-high',
      MDE_API_URL: 'https://api-gov.example.us',
      AZURE_AUTHORITY_HOST: 'https://login.example.us',
      MDE_SCOPE: 'https://api.securitycenter.microsoft.us/.default',
    });
    expect(config).toMatchObject({ apiUrl: 'https://api-gov.example.us', authorityHost: 'https://login.example.us', scope: 'https://api.securitycenter.microsoft.us/.default' });
    expect(problems([], { ...LIVE, MDE_CLOUD: 'gcc-high', MDE_REGION: 'eu' })[0]).toMatch(/commercial cloud only/);
    expect(problems([], { ...LIVE, MDE_REGION: 'mars' })[0]).toMatch(/MDE_REGION/);
    expect(problems([], { ...LIVE, MDE_CLOUD: 'moon' })[0]).toMatch(/MDE_CLOUD.*commercial, gcc, gcc-high, dod/);
  });

  it('selects the sign-in method', () => {
    expect(run([], { MDE_AUTH_METHOD: 'managed-identity' }).config.credential).toEqual({ kind: 'managed-identity', userAssignedClientId: undefined });
    expect(run([], { MDE_AUTH_METHOD: 'managed-identity', AZURE_CLIENT_ID: 'uai' }).config.credential).toEqual({ kind: 'managed-identity', userAssignedClientId: 'uai' });
    expect(run(['--auth-method', 'device-code', '--token-cache-path', '/tmp/c.json'], { AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c' }).config.credential).toEqual({
      kind: 'device-code',
      tokenCachePath: '/tmp/c.json',
      timeoutSeconds: 900,
    });
    expect(problems([], { MDE_AUTH_METHOD: 'device-code' })).toHaveLength(2);
    expect(problems([], { MDE_AUTH_METHOD: 'device-code', AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 'x' })[0]).toMatch(/takes no AZURE_CLIENT_SECRET/);
    expect(problems([], { ...LIVE, MDE_TOKEN_CACHE_PATH: '/tmp/x' })[0]).toMatch(/only applies to MDE_AUTH_METHOD=device-code/);
    expect(problems([], { MDE_AUTH_METHOD: 'password' })[0]).toMatch(/client-credentials, managed-identity, device-code/);
  });
});

describe('settings from one description (issue 10)', () => {
  it('names the nearest flag for a typo, once, and tells a secret flag apart', () => {
    const typo = problems(['--simulater'], {});
    expect(typo).toEqual(['Unknown flag --simulater. Did you mean --simulator? Run with --help to list every setting.']);
    expect(problems(['--client-secret', 'x'], LIVE)[0]).toMatch(/AZURE_CLIENT_SECRET is read only from the environment/);
    let message = '';
    try {
      parseConfig(['--simulater'], {});
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.match(/--help/g)).toHaveLength(1);
    expect(parseConfig(['-h'], {}).kind).toBe('help');
    expect(run(['--comment-pattern=-INC-\\d+'], LIVE).config.policy.commentPattern).toBe('-INC-\\d+');
    expect(problems(['--comment-pattern', '-INC'], LIVE)[0]).toMatch(/--comment-pattern=-XYZ/);
  });

  it('refuses a tenant that is neither a GUID nor a domain, naming the setting', () => {
    expect(problems([], { ...LIVE, AZURE_TENANT_ID: 'my tenant' })[0]).toMatch(/AZURE_TENANT_ID \(--tenant-id\) must be the tenant id \(a GUID/);
    expect(problems([], { ...LIVE, AZURE_TENANT_ID: 'contoso' })[0]).toMatch(/AZURE_TENANT_ID/);
    expect(run([], { ...LIVE, AZURE_TENANT_ID: '72F988BF-86F1-41AF-91AB-2D7CD011DB47' }).config.tenantId).toBe('72F988BF-86F1-41AF-91AB-2D7CD011DB47');
  });

  it('reads MDE_LOG_LEVEL (and says that DEBUG is not read), the aea region and the device-code bound', () => {
    expect(run([], { ...LIVE, MDE_LOG_LEVEL: 'DEBUG' }).config.logLevel).toBe('debug');
    expect(problems([], { ...LIVE, MDE_LOG_LEVEL: 'verbose' })[0]).toMatch(/MDE_LOG_LEVEL \(--log-level\) must be one of debug, info, warning, error/);
    expect(run([], { ...LIVE, DEBUG: '*' }).warnings[0]).toMatch(/MDE_LOG_LEVEL=debug/);
    expect(run([], { ...LIVE, MDE_REGION: 'aea' }).config.apiUrl).toBe('https://aea.api.security.microsoft.com');
    expect(problems([], { MDE_AUTH_METHOD: 'device-code', AZURE_TENANT_ID: 'contoso.com', AZURE_CLIENT_ID: 'c', MDE_DEVICE_CODE_TIMEOUT_SECONDS: '3600' })[0]).toMatch(/from 30 to 900/);
  });

  it('writes --help from the description: every setting, its accepted words or range, and per-cloud defaults', () => {
    const text = helpText();
    expect(text).toContain('MDE_LOG_LEVEL | --log-level VALUE');
    expect(text).toContain('-h, --help');
    expect(text).toContain('Accepts: 100 to 600,000 ms. Default: 30,000 ms.');
    expect(text).toContain('1/true/yes/on (on)');
    expect(text).toContain('gcc-high: https://login.microsoftonline.us');
    expect(text).toContain('gcc: https://api-gcc.securitycenter.microsoft.us/.default');
    for (const s of SETTINGS) if (s.env) expect(text).toContain(s.env);
  });
});

describe('shared state settings (several replicas)', () => {
  const KEY = Buffer.alloc(32, 7).toString('base64');
  const OLD = Buffer.alloc(48, 9).toString('base64url');

  it('accepts redis://, rediss:// with a password from the environment, and unix:///path, with a key', () => {
    for (const url of ['redis://cache.internal:6379', 'rediss://default:p%40ss@cache.internal:6380/0', 'unix:///run/redis/redis.sock']) {
      const { config } = run([], { ...LIVE, MDE_REDIS_URL: url, MDE_CONFIRMATION_KEY: KEY });
      expect(config.redisUrl).toBe(url);
      expect(config.confirmationKeys).toEqual({ current: Buffer.alloc(32, 7), previous: [] });
    }
    expect(run(['--redis-url', 'redis://127.0.0.1:6379'], { ...LIVE, MDE_CONFIRMATION_KEY: KEY }).config.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('without MDE_REDIS_URL the state is this process\'s: a confirmation key is refused (its spent tokens would live in one process)', () => {
    const { config } = run([], LIVE);
    expect(config.redisUrl).toBeUndefined();
    expect(config.confirmationKeys).toBeUndefined();
    expect(problems([], { ...LIVE, MDE_CONFIRMATION_KEY: KEY })).toEqual([
      expect.stringMatching(/^MDE_CONFIRMATION_KEY is set without MDE_REDIS_URL \(--redis-url\): spent confirmation tokens would be remembered by this process only, .* Set MDE_REDIS_URL .*, or unset MDE_CONFIRMATION_KEY/),
    ]);
    expect(run([], { ...LIVE, MDE_REDIS_URL: 'redis://cache:6379', MDE_CONFIRMATION_KEY: KEY, MDE_CONFIRMATION_KEY_PREVIOUS: OLD }).config.confirmationKeys).toEqual({
      current: Buffer.alloc(32, 7),
      previous: [Buffer.alloc(48, 9)],
    });
  });

  it('requires MDE_CONFIRMATION_KEY with Redis, saying why and how to make one', () => {
    const p = problems([], { ...LIVE, MDE_REDIS_URL: 'redis://cache:6379' });
    expect(p).toEqual([expect.stringMatching(/MDE_REDIS_URL \(--redis-url\) needs MDE_CONFIRMATION_KEY, the same on every replica.*openssl rand -base64 32/)]);
  });

  it('refuses a short or non-base64 key, a previous key alone, and never echoes a key', () => {
    const short = Buffer.alloc(16, 1).toString('base64');
    const shared = { ...LIVE, MDE_REDIS_URL: 'redis://cache:6379' };
    expect(problems([], { ...shared, MDE_CONFIRMATION_KEY: short })).toEqual([expect.stringMatching(/MDE_CONFIRMATION_KEY must be base64 of at least 32 random bytes \(got 16 bytes\)/)]);
    const notBase64 = 'this is not base64 but it is long enough to pass';
    const p = problems([], { ...shared, MDE_CONFIRMATION_KEY: notBase64 });
    expect(p).toEqual([expect.stringMatching(/got text that is not base64/)]);
    expect(p.join('\n')).not.toContain(notBase64);
    expect(problems([], { ...LIVE, MDE_CONFIRMATION_KEY_PREVIOUS: OLD })).toEqual([expect.stringMatching(/MDE_CONFIRMATION_KEY_PREVIOUS is set without MDE_CONFIRMATION_KEY/)]);
  });

  it('refuses other schemes, a relative socket path, and a password on the command line (without echoing it)', () => {
    const env = { ...LIVE, MDE_CONFIRMATION_KEY: KEY };
    expect(problems([], { ...env, MDE_REDIS_URL: 'http://cache:6379' })).toEqual([expect.stringMatching(/must start with redis:\/\/, rediss:\/\/ \(TLS\) or unix:\/\//)]);
    expect(problems([], { ...env, MDE_REDIS_URL: 'unix://redis.sock' })).toEqual([expect.stringMatching(/unix:\/\/\/absolute\/path/)]);
    expect(problems([], { ...env, MDE_REDIS_URL: 'cache:6379' })).toEqual([expect.stringMatching(/must start with redis:\/\//)]);
    const p = problems(['--redis-url', 'redis://default:hunter2-secret@cache:6379'], env);
    expect(p).toEqual([expect.stringMatching(/--redis-url carries a password.*MDE_REDIS_URL instead/)]);
    expect(p.join('\n')).not.toContain('hunter2-secret');
  });

  it('per-user share: off by default, a whole number when set', () => {
    expect(run([], LIVE).config.rateLimit.perUserPerMinute).toBeUndefined();
    expect(run(['--rate-limit-per-user-per-minute', '20'], LIVE).config.rateLimit.perUserPerMinute).toBe(20);
    expect(problems([], { ...LIVE, MDE_RATE_LIMIT_PER_USER_PER_MINUTE: 'ten' })).toEqual([expect.stringMatching(/MDE_RATE_LIMIT_PER_USER_PER_MINUTE/)]);
  });
});

describe('parseConfig: remote mode', () => {
  it('reads every HTTP setting from flags and the environment', () => {
    const { config } = run(['--transport', 'http', '--port', '0', '--allowed-origins', 'https://a.contoso.com, https://b.contoso.com'], {
      ...LIVE,
      MDE_HTTP_HOST: '0.0.0.0',
      MDE_APP_ID_URI: 'https://mcp.contoso.com/mcp',
      MDE_REQUIRED_SCOPE: 'mcp.access',
      MDE_RESOURCE_URL: 'https://mcp.contoso.com/mcp',
      MDE_ALLOWED_HOSTS: 'internal.contoso.com',
      MDE_APP_CALLER_ROLE: 'MDE.Unrestrict.App',
      MDE_HTTP_TOKEN_REUSE_SECONDS: '0',
      MDE_HTTP_SESSION_IDLE_MINUTES: '5',
      MDE_HTTP_MAX_SESSIONS_PER_USER: '3',
      MDE_HTTP_SHUTDOWN_GRACE_SECONDS: '10',
    });
    expect(config.transport).toBe('http');
    expect(config.http).toEqual({
      host: '0.0.0.0',
      port: 0,
      auth: 'entra',
      appIdUri: 'https://mcp.contoso.com/mcp',
      requiredScope: 'mcp.access',
      resourceUrl: 'https://mcp.contoso.com/mcp',
      allowedOrigins: ['https://a.contoso.com', 'https://b.contoso.com'],
      allowedHosts: ['internal.contoso.com'],
      appCallerRole: 'MDE.Unrestrict.App',
      tokenReuseMs: 0,
      sessionIdleMs: 5 * 60_000,
      maxSessionsPerUser: 3,
      shutdownGraceMs: 10_000,
      tlsCertPath: undefined,
      tlsKeyPath: undefined,
    });
  });

  it('refuses a token reuse window beyond 5 minutes (it bounds how long a withdrawn signing key still counts)', () => {
    expect(problems(['--transport', 'http', '--token-reuse-seconds', '301'], LIVE)).toEqual([expect.stringMatching(/MDE_HTTP_TOKEN_REUSE_SECONDS.*0.*300/)]);
    expect(run(['--transport', 'http', '--token-reuse-seconds', '60'], LIVE).config.http.tokenReuseMs).toBe(60_000);
  });

  it('refuses MDE_HTTP_AUTH=none against a real tenant when clients reach it by a non-loopback name (a proxy or tunnel in front)', () => {
    const none = ['--transport', 'http', '--http-auth', 'none'];
    expect(problems([...none, '--resource-url', 'https://mcp.contoso.com/mcp'], LIVE)).toEqual([expect.stringMatching(/MDE_HTTP_AUTH=none .*MDE_RESOURCE_URL .*mcp\.contoso\.com/)]);
    expect(problems([...none, '--allowed-hosts', 'localhost,tunnel.example.net'], LIVE)).toEqual([expect.stringMatching(/MDE_HTTP_AUTH=none .*MDE_ALLOWED_HOSTS .*tunnel\.example\.net/)]);
    // Loopback names stay fine; so does the simulator (no real devices) behind a tunnel for a demo.
    expect(run([...none, '--resource-url', 'http://localhost:3000/mcp', '--allowed-hosts', '127.0.0.1'], LIVE).config.http.auth).toBe('none');
    expect(run(['--simulator', '--transport', 'http', '--resource-url', 'https://demo.example.net/mcp'], {}).config.http.auth).toBe('none');
  });

  it('binds an IPv6 literal given in brackets (as in a URL) without them', () => {
    expect(run(['--simulator', '--transport', 'http', '--host', '[::1]'], {}).config.http.host).toBe('::1');
    expect(problems(['--simulator', '--transport', 'http', '--host', '[::]'], {})).toEqual([expect.stringMatching(/refused on ::/)]);
  });

  it('serves the simulator without sign-in, on loopback only', () => {
    expect(run(['--simulator', '--transport', 'http'], {}).config.http.auth).toBe('none');
    expect(problems(['--simulator', '--transport', 'http', '--host', '0.0.0.0'], {})).toEqual([
      expect.stringMatching(/MDE_HTTP_AUTH=none serves without sign-in, so it is refused on 0\.0\.0\.0/),
    ]);
    expect(problems(['--simulator', '--transport', 'http', '--http-auth', 'entra'], {})).toEqual([expect.stringMatching(/simulator has no tenant/)]);
  });

  it('refuses MDE_HTTP_AUTH=none on a non-loopback bind, bad words, and sign-ins that cannot do On-Behalf-Of', () => {
    expect(problems(['--transport', 'http', '--http-auth', 'none', '--host', '10.0.0.5'], LIVE)).toEqual([expect.stringMatching(/refused on 10\.0\.0\.5/)]);
    expect(problems(['--transport', 'carrier-pigeon'], LIVE)).toEqual([expect.stringMatching(/MDE_TRANSPORT \(--transport\) must be "stdio" or "http"/)]);
    expect(problems(['--transport', 'http', '--http-auth', 'maybe'], LIVE)).toEqual([expect.stringMatching(/MDE_HTTP_AUTH/)]);
    expect(problems(['--transport', 'http', '--port', '70000'], LIVE)).toEqual([expect.stringMatching(/MDE_HTTP_PORT \(--port\)/)]);
    expect(problems(['--transport', 'http', '--allowed-origins', 'https://a.contoso.com/path'], LIVE)).toEqual([expect.stringMatching(/MDE_ALLOWED_ORIGINS/)]);
    expect(problems(['--transport', 'http', '--tls-cert-path', '/x.pem'], LIVE)).toEqual([expect.stringMatching(/Set both MDE_HTTP_TLS_CERT_PATH .* and MDE_HTTP_TLS_KEY_PATH .*, or neither/)]);
    expect(problems(['--transport', 'http'], { AZURE_TENANT_ID: 'contoso.onmicrosoft.com', AZURE_CLIENT_ID: 'c', MDE_AUTH_METHOD: 'managed-identity' })).toEqual([
      expect.stringMatching(/On-Behalf-Of .* MDE_AUTH_METHOD=managed-identity cannot exchange tokens/),
    ]);
  });

  it('a flag without its value gets a tailored message, not the parser\'s text; a value may still start with a dash', () => {
    expect(problems(['--port'], LIVE)).toEqual(['--port needs a value: a whole number from 0 to 65535 (--port VALUE; one that starts with "-" is written --port=-XYZ). Run with --help to list every setting.']);
    expect(problems(['--comment-pattern', '--simulator'], LIVE)).toEqual(['--comment-pattern needs a value (--comment-pattern VALUE; one that starts with "-" is written --comment-pattern=-XYZ). Run with --help to list every setting.']);
    expect(problems(['--transport', '--read-only'], LIVE)[0]).toMatch(/^--transport needs a value: "stdio" or "http"/);
    expect(problems(['--comment-pattern', '-INC'], LIVE)).toEqual([expect.stringMatching(/^--comment-pattern needs a value/)]);
    expect(run(['--comment-pattern=-INC'], LIVE).config.policy.commentPattern).toBe('-INC');
    expect(run(['--port', '8080', '--transport', 'http'], { ...LIVE, AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47' }).config.http.port).toBe(8080);
  });

  it('warns when HTTP settings are given to a stdio server', () => {
    expect(run([], { ...LIVE, MDE_HTTP_PORT: '8080' }).warnings).toEqual([expect.stringMatching(/stdio transport: ignoring MDE_HTTP_PORT/)]);
  });

  it('names every remote-mode setting a stdio server ignores, as its description marks it; none when nothing is given', () => {
    const httpOnly = {
      MDE_HTTP_SESSION_IDLE_MINUTES: '5',
      MDE_HTTP_SHUTDOWN_GRACE_SECONDS: '3',
      MDE_REQUIRED_SCOPE: 'x',
      MDE_RATE_LIMIT_PER_USER_PER_MINUTE: '10',
      MDE_HTTP_MAX_SESSIONS_PER_USER: '2',
      MDE_ALLOWED_HOSTS: 'mcp.contoso.com',
      MDE_APP_ID_URI: 'api://x',
      MDE_HTTP_TLS_KEY_PATH: '/k.pem',
    };
    expect(run([], { ...LIVE, ...httpOnly }).warnings).toEqual([`stdio transport: ignoring ${Object.keys(httpOnly).map((k) => SETTINGS.find((s) => s.env === k)!).sort((x, y) => SETTINGS.indexOf(x) - SETTINGS.indexOf(y)).map((s) => s.env).join(', ')} (they apply to MDE_TRANSPORT=http).`]);
    expect(run([], LIVE).warnings).toEqual([]);
    for (const s of SETTINGS.filter((x) => x.mode === 'http')) expect(s.help, s.key).toMatch(/^(http|HTTP mode): /);
    expect(SETTINGS.filter((x) => x.mode === 'http')).toHaveLength(16);
  });

  it('warns about a device-code setting without device-code sign-in (a token cache there is refused)', () => {
    expect(run([], { ...LIVE, MDE_DEVICE_CODE_TIMEOUT_SECONDS: '60' }).warnings).toEqual(['MDE_AUTH_METHOD is not device-code: ignoring MDE_DEVICE_CODE_TIMEOUT_SECONDS.']);
    expect(run(['--auth-method', 'device-code'], { AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c', MDE_DEVICE_CODE_TIMEOUT_SECONDS: '60' }).warnings).toEqual([]);
    expect(run(['--simulator'], { MDE_DEVICE_CODE_TIMEOUT_SECONDS: '60' }).warnings).toEqual([]);
  });

  it('applies text defaults from the description: scope, metrics host, bind host, approver role', () => {
    const { config } = run(['--transport', 'http', '--approval', 'two-person'], { ...LIVE, AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47' });
    expect(config.http).toMatchObject({ requiredScope: 'user_impersonation', host: '127.0.0.1' });
    expect(config.metrics.host).toBe('127.0.0.1');
    expect(config.approval?.approverRole).toBe('MDE.Approver');
  });

  it('MDE_HTTP_AUTH=none takes an IPv4-mapped loopback address as loopback, by the same check the HTTP edge uses', () => {
    expect(run(['--transport', 'http', '--http-auth', 'none', '--host', '::ffff:127.0.0.1'], LIVE).config.http.auth).toBe('none');
    expect(problems(['--transport', 'http', '--http-auth', 'none', '--host', '::ffff:10.0.0.5'], LIVE)).toEqual([expect.stringMatching(/refused on ::ffff:10\.0\.0\.5/)]);
  });
});

describe('parseConfig: metrics and log format', () => {
  it('keeps metrics off and logs human-readable by default; reads the port, host and format', () => {
    expect(run([], LIVE).config).toMatchObject({ metrics: { port: undefined, host: '127.0.0.1' }, logFormat: 'text' });
    const { config, warnings } = run(['--metrics-port', '9464'], { ...LIVE, MDE_LOG_FORMAT: 'JSON' });
    expect(config).toMatchObject({ metrics: { port: 9464, host: '127.0.0.1' }, logFormat: 'json' });
    expect(warnings).toEqual([]);
    expect(run([], { ...LIVE, MDE_METRICS_PORT: '0' }).config.metrics.port).toBe(0);
  });

  it('warns when /metrics (no authentication) is bound off loopback, and when a host is given without a port', () => {
    expect(run(['--metrics-port', '9464', '--metrics-host', '0.0.0.0'], LIVE).warnings).toEqual([expect.stringMatching(/Metrics are served on 0\.0\.0\.0 without authentication/)]);
    expect(run([], { ...LIVE, MDE_METRICS_HOST: '10.0.0.5' }).warnings).toEqual([expect.stringMatching(/MDE_METRICS_HOST is set but metrics are off/)]);
  });

  it('refuses a bad port or format, naming the setting', () => {
    expect(problems(['--metrics-port', '65536'], LIVE)).toEqual([expect.stringMatching(/MDE_METRICS_PORT \(--metrics-port\) must be a whole number from 0 to 65535/)]);
    expect(problems([], { ...LIVE, MDE_LOG_FORMAT: 'xml' })).toEqual([expect.stringMatching(/MDE_LOG_FORMAT \(--log-format\) must be "text" or "json"/)]);
  });
});

describe('the two-person rule (MDE_APPROVAL)', () => {
  const REMOTE = { ...LIVE, MDE_TRANSPORT: 'http' };

  it('is off by default; two-person in remote mode with Entra sign-in takes its settings', () => {
    expect(run([], REMOTE).config.approval).toBeUndefined();
    const { config } = run(['--approval', 'two-person', '--approval-ttl-minutes', '15'], { ...REMOTE, MDE_APPROVAL_DEVICE_GROUPS: 'Tier 0 Servers, Finance Workstations', MDE_APPROVAL_TAGS: 'VIP', MDE_APPROVER_ROLE: 'SOC.Approver' });
    expect(config.approval).toEqual({ deviceGroups: ['Tier 0 Servers', 'Finance Workstations'], tags: ['VIP'], ttlMs: 15 * 60_000, approverRole: 'SOC.Approver' });
    expect(run([], { ...REMOTE, MDE_APPROVAL: 'two-person' }).config.approval).toEqual({ deviceGroups: [], tags: [], ttlMs: 60 * 60_000, approverRole: 'MDE.Approver' });
  });

  it('refuses to start in stdio mode or without sign-in, saying why (one identity cannot be two people)', () => {
    const stdio = problems([], { ...LIVE, MDE_APPROVAL: 'two-person' });
    expect(stdio).toHaveLength(1);
    expect(stdio[0]).toMatch(/MDE_APPROVAL=two-person .*needs remote mode with Entra sign-in.*one identity cannot be two people.*MDE_TRANSPORT=http/);
    const noAuth = problems(['--simulator', '--transport', 'http', '--approval', 'two-person'], {});
    expect(noAuth.join('\n')).toMatch(/MDE_HTTP_AUTH=none signs nobody in/);
    expect(problems([], { ...REMOTE, MDE_APPROVAL: 'two-person', MDE_APPROVER_ROLE: 'has spaces' })[0]).toMatch(/MDE_APPROVER_ROLE/);
  });

  it('warns that approval details are ignored while the rule is off', () => {
    expect(run([], { ...REMOTE, MDE_APPROVAL_TAGS: 'VIP' }).warnings.join('\n')).toMatch(/MDE_APPROVAL is none: ignoring MDE_APPROVAL_TAGS/);
  });

  it('stand-in analysts (MDE_HTTP_AUTH=simulated-users) exist only with --simulator on loopback: never against a real tenant', () => {
    const sim = run(['--simulator', '--transport', 'http', '--http-auth', 'simulated-users', '--approval', 'two-person'], {});
    expect(sim.config.http.auth).toBe('simulated-users');
    expect(sim.config.approval).toBeDefined();
    expect(problems(['--transport', 'http', '--http-auth', 'simulated-users'], LIVE).join('\n')).toMatch(/simulated-users .*works only with --simulator/);
    expect(problems([], { ...REMOTE, MDE_HTTP_AUTH: 'simulated-users', MDE_APPROVAL: 'two-person' }).join('\n')).toMatch(/only with --simulator/);
    expect(problems(['--simulator', '--transport', 'http', '--http-auth', 'simulated-users', '--host', '0.0.0.0'], {}).join('\n')).toMatch(/loopback bind, not on 0\.0\.0\.0/);
  });
});
