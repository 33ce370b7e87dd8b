/**
 * The built server, spawned over stdio, signing in through MSAL against an HTTPS fake of the Entra
 * token endpoint (self-signed CA trusted through NODE_EXTRA_CA_CERTS) and calling an HTTP fake of the
 * Defender API. Asserts what crossed the wire.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RESTRICTED_DEVICE, PENDING_DEVICE, textOf } from '../helpers/harness.js';
import {
  CLIENT_CERT_ENCRYPTED,
  CLIENT_CERT_PASSWORD,
  CLIENT_SECRET,
  baseEnv,
  runServer,
  spawnServer,
  spawnTracked,
  startFakes,
} from '../helpers/process.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
const COMMENT = 'INC-77: cleaned, lifting restriction';

type Fakes = Awaited<ReturnType<typeof startFakes>>;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function fakes(opts = {}): Promise<Fakes> {
  const f = await startFakes(opts);
  cleanups.push(() => f.sim.close());
  return f;
}
function liveEnv(f: Fakes, credential: Record<string, string>): Record<string, string> {
  return {
    ...baseEnv(),
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    AZURE_AUTHORITY_HOST: f.authorityHost,
    MDE_API_URL: f.apiUrl,
    ...credential,
  };
}
const spawn = (opts: Parameters<typeof spawnServer>[0]) => spawnTracked(cleanups, opts);

describe('built server over stdio, client secret', () => {
  it('signs in once through MSAL, confirms by token, posts exactly {"Comment": ...}, and reuses the token', async () => {
    const f = await fakes();
    const s = await spawn({ env: liveEnv(f, { AZURE_CLIENT_SECRET: CLIENT_SECRET }) });

    const first = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const { confirmation } = first.structuredContent as { confirmation: { token: string } };
    expect(first.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    expect(f.sim.apiRequests('POST')).toHaveLength(0);

    const second = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: confirmation.token });
    expect(second.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { type: 'UnrestrictCodeExecution', status: 'Pending' } });

    // An unrestrict already pending: answered from the history at once, no token, no POST.
    const third = await s.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(third.structuredContent).toMatchObject({ outcome: 'already_pending' });

    // One token request for every call, with the documented scope and client-credentials grant, and no
    // discovery round trip: the authority's metadata is known.
    expect(f.sim.requests.filter((r) => r.path.includes('.well-known'))).toHaveLength(0);
    const tokenRequests = f.sim.tokenRequests();
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.path).toBe(`/${TENANT}/oauth2/v2.0/token`);
    const form = new URLSearchParams(tokenRequests[0]!.body);
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('client_id')).toBe(CLIENT_ID);
    expect(form.get('scope')).toBe('https://api.securitycenter.microsoft.com/.default');
    expect(form.get('client_secret')).toBe(CLIENT_SECRET);

    const api = f.sim.apiRequests();
    expect(api.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/machineactions',
      `GET /api/machines/${RESTRICTED_DEVICE}`,
      'GET /api/machineactions',
      `POST /api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`,
      'GET /api/machineactions',
    ]);
    const bearer = api[0]!.headers.authorization!;
    expect(bearer).toMatch(/^Bearer eyJ/);
    expect(new Set(api.map((r) => r.headers.authorization))).toEqual(new Set([bearer]));
    const post = api[3]!;
    expect(post.body).toBe(`{"Comment":"${COMMENT}"}`);
    expect(post.headers['content-type']).toBe('application/json');

    // Neither the secret nor the access token appears in anything the server said.
    const everything = [textOf(first), textOf(second), textOf(third), JSON.stringify([first, second, third]), s.stderr()].join('\n');
    expect(everything).not.toContain(CLIENT_SECRET);
    expect(everything).not.toContain(bearer.slice('Bearer '.length));
    expect(s.stderr()).toMatch(/sign-in: client credentials \(client secret\)/);
  });

  it('asks through elicitation when the client supports it', async () => {
    const f = await fakes();
    const s = await spawn({ env: liveEnv(f, { AZURE_CLIENT_SECRET: CLIENT_SECRET }), elicit: 'accept' });
    const r = await s.call({ machineId: RESTRICTED_DEVICE.toUpperCase(), comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'elicitation' });
    expect(s.prompts[0]!.message).toContain('finance-ws-017.contoso.com');
    expect(f.sim.apiRequests('POST')).toHaveLength(1);
  });

  it('reports a wrong secret with its AADSTS code, never echoing it, and keeps serving', async () => {
    const f = await fakes();
    const wrong = 'Wr0ng~secret-that-must-not-leak';
    const s = await spawn({ env: liveEnv(f, { AZURE_CLIENT_SECRET: wrong }), elicit: 'accept' });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/authentication/);
    expect(textOf(r)).toMatch(/AADSTS7000215/);
    expect(textOf(r)).toMatch(/AZURE_CLIENT_SECRET/);
    expect(textOf(r) + s.stderr()).not.toContain(wrong);
    expect(f.sim.apiRequests()).toHaveLength(0);
    const { tools } = await s.client.listTools();
    expect(tools.map((t) => t.name)).toContain('remove_app_restriction');
  });
});

describe('built server over stdio, audit trail', () => {
  it('never writes the secret, the access token or a confirmation token into the audit log', async () => {
    const f = await fakes();
    const dir = mkdtempSync(join(tmpdir(), 'mde-audit-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const auditPath = join(dir, 'audit.jsonl');
    const s = await spawn({ env: { ...liveEnv(f, { AZURE_CLIENT_SECRET: CLIENT_SECRET }), MDE_AUDIT_LOG: auditPath } });
    const first = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;
    await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token }); // replay: rejected

    const raw = readFileSync(auditPath, 'utf8');
    const records = raw.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => `${r.event}:${r.confirmation}`)).toEqual([
      'not_sent:token_issued',
      'intent:token_redeemed',
      'outcome:token_redeemed',
      'not_sent:token_rejected',
    ]);
    expect(records[1]).toMatchObject({ client: { name: 'process-test-client', version: '1.0.0' }, hostName: 'finance-ws-017.contoso.com' });
    const accessToken = f.sim.apiRequests()[0]!.headers.authorization!.slice('Bearer '.length);
    for (const secret of [CLIENT_SECRET, accessToken, token, token.split('.')[3]!]) expect(raw).not.toContain(secret);
    expect(statSync(auditPath).mode & 0o777).toBe(0o600);
  });

  it('stops at start when the audit log cannot be created', () => {
    const r = runServer(['--simulator', '--audit-log', '/proc/definitely/not/here.jsonl'], baseEnv());
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/audit log .* cannot be written/);
    expect(r.stderr).toMatch(/MDE_AUDIT_LOG/);
  });
});

describe('built server over stdio, certificate', () => {
  it('signs in with an encrypted PEM (key + certificate) through a signed client assertion', async () => {
    const f = await fakes();
    const s = await spawn({
      env: liveEnv(f, { AZURE_CLIENT_CERTIFICATE_PATH: CLIENT_CERT_ENCRYPTED, AZURE_CLIENT_CERTIFICATE_PASSWORD: CLIENT_CERT_PASSWORD }),
      args: ['--dangerously-skip-confirmation'],
    });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'skipped' });
    const form = new URLSearchParams(f.sim.tokenRequests()[0]!.body);
    expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    expect(form.get('client_assertion')).toMatch(/^eyJ/);
    expect(form.get('client_secret')).toBeNull();
    expect(s.stderr()).toMatch(/DANGER: --dangerously-skip-confirmation is on. remove_app_restriction and cancel_machine_action will act WITHOUT asking a human/);
    expect(s.stderr()).not.toContain(CLIENT_CERT_PASSWORD);
  });

  it('stops at start when the certificate password is wrong', () => {
    const r = runServer([], {
      ...baseEnv(),
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_CLIENT_CERTIFICATE_PATH: CLIENT_CERT_ENCRYPTED,
      AZURE_CLIENT_CERTIFICATE_PASSWORD: 'not-the-password',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/password is wrong or missing/);
    expect(r.stderr).not.toContain('not-the-password');
    expect(r.stdout).toBe('');
  });
});

describe('start-up', () => {
  it('stops with a message naming each missing variable and flag, and writes nothing to stdout', () => {
    const r = runServer([], baseEnv());
    expect(r.status).toBe(2);
    for (const name of ['AZURE_TENANT_ID', '--tenant-id', 'AZURE_CLIENT_ID', '--client-id', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', '--simulator']) {
      expect(r.stderr).toContain(name);
    }
    expect(r.stdout).toBe('');
  });

  it('--help lists every setting on stdout (asked for, so `--help | grep` works) and exits 0; --version too', () => {
    const r = runServer(['--help'], baseEnv());
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('MDE_CONFIRMATION');
    expect(r.stdout).toContain('--dangerously-skip-confirmation');
    expect(r.stderr).toBe('');
    const v = runServer(['--version'], baseEnv());
    expect(v).toMatchObject({ status: 0, stderr: '' });
    expect(v.stdout).toMatch(/^mde-app-restriction-mcp \d+\.\d+\.\d+\n$/);
  });

  it('-h is --help; a mistyped flag gets one message naming the nearest flag; a bad tenant is refused', () => {
    expect(runServer(['-h'], baseEnv())).toMatchObject({ status: 0, stderr: '', stdout: expect.stringContaining('MDE_CONFIRMATION') });
    const typo = runServer(['--simulater'], baseEnv());
    expect(typo.status).toBe(2);
    expect(typo.stderr.match(/Did you mean --simulator\?/g)).toHaveLength(1);
    expect(typo.stderr.match(/--help/g)).toHaveLength(1);
    const tenant = runServer([], { ...baseEnv(), AZURE_TENANT_ID: 'not a tenant' });
    expect(tenant.status).toBe(2);
    expect(tenant.stderr).toMatch(/AZURE_TENANT_ID \(--tenant-id\) must be the tenant id/);
  });

  it('start-up errors are redacted: a secret pasted into another setting never reaches stderr', () => {
    const secret = 'Pasted~Secret.Value_0123456789';
    const r = runServer([], { ...baseEnv(), AZURE_CLIENT_SECRET: secret, AZURE_TENANT_ID: secret, MDE_COMMENT_PATTERN: `(${secret}` });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/AZURE_TENANT_ID \(--tenant-id\) must be the tenant id/);
    expect(r.stderr).not.toContain(secret);
    expect(r.stderr).toContain('[REDACTED]');
  });

  it('a comment pattern the linear-time engine cannot run stops the server at start, naming the setting', () => {
    const r = runServer([], { ...baseEnv(), AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's3cret-value', MDE_COMMENT_PATTERN: '(INC)-\\d+ \\1' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MDE_COMMENT_PATTERN \(--comment-pattern\) cannot be used: .*backreferences/);
  });

  it('--simulator serves the real tool with no credentials', async () => {
    const s = await spawn({ env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: baseEnv().NODE_OPTIONS! }, args: ['--simulator'], elicit: 'accept' });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { machineId: RESTRICTED_DEVICE } });
    expect(s.stderr()).toMatch(/Simulator mode/);
  });

  it('npm run demo: builds from source, connects, confirms by elicitation, and prints the MachineAction', () => {
    // Built into a temporary directory, so that the other suites' dist/ is not rebuilt under them.
    const outdir = mkdtempSync(join(tmpdir(), 'mde-demo-'));
    cleanups.push(async () => rmSync(outdir, { recursive: true, force: true }));
    const out = execFileSync(process.execPath, [new URL('../../scripts/demo.mjs', import.meta.url).pathname, '--outdir', outdir], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: baseEnv().NODE_OPTIONS! },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toContain('Confirmation prompt shown to the human');
    expect(out).toContain('"type": "UnrestrictCodeExecution"');
    expect(out).toContain('outcome: submitted, confirmed by: elicitation');
    expect(out).toContain(`Building ${join(outdir, 'cli.js')}`);
    expect(statSync(join(outdir, 'cli.js')).isFile()).toBe(true);
  });

  it('npm run demo without its dependencies: one clear line, no stack trace', () => {
    const clone = mkdtempSync(join(tmpdir(), 'mde-clone-'));
    cleanups.push(async () => rmSync(clone, { recursive: true, force: true }));
    mkdirSync(join(clone, 'scripts'));
    copyFileSync(new URL('../../scripts/demo.mjs', import.meta.url), join(clone, 'scripts', 'demo.mjs'));
    copyFileSync(new URL('../../scripts/demo-build.mjs', import.meta.url), join(clone, 'scripts', 'demo-build.mjs'));
    const r = spawnSync(process.execPath, [join(clone, 'scripts', 'demo.mjs')], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`Demo cannot run: esbuild is not installed. Run \`npm ci\` in ${clone} first.`);
  });
});

describe('package', () => {
  it('packs only what runs plus the licences (LICENSE, notices, SBOM), no install scripts, and the tarball starts with npx', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-pack-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const root = new URL('../..', import.meta.url).pathname;
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
      filename: string;
      files: { path: string }[];
    }[];
    const files = packed[0]!.files.map((f) => f.path);
    const legal = ['LICENSE', 'dist/THIRD-PARTY-NOTICES.txt', 'dist/sbom.cdx.json'];
    for (const f of ['dist/cli.js', 'package.json', 'README.md', ...legal]) expect(files).toContain(f);
    expect(files.every((f) => f === 'package.json' || f === 'README.md' || legal.includes(f) || /^dist\/.*\.js$/.test(f))).toBe(true);
    expect(files.some((f) => f.endsWith('.map') || f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
    // The packed package.json runs nothing at install time for whoever installs it.
    const packedPkg = JSON.parse(execFileSync('tar', ['-xzOf', join(dir, packed[0]!.filename), 'package/package.json'], { encoding: 'utf8' })) as { scripts?: Record<string, string> };
    const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare', 'prepublish'];
    expect(Object.keys(packedPkg.scripts ?? {}).filter((k) => lifecycle.includes(k))).toEqual([]);

    const init = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } })}\n`;
    const out = execFileSync('npx', ['-y', `./${packed[0]!.filename}`, '--simulator'], {
      cwd: dir,
      input: init,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir, npm_config_cache: join(dir, 'npm-cache') },
      stdio: ['pipe', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    expect(JSON.parse(out.split('\n')[0]!)).toMatchObject({ id: 1, result: { serverInfo: { name: 'mde-app-restriction-mcp' } } });
  });
});
