/**
 * `npm run demo:approval` end to end (built from source into a temporary directory), and the lock on its
 * stand-in analysts: the built server refuses MDE_HTTP_AUTH=simulated-users without --simulator.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENTRY, baseEnv } from '../helpers/process.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

describe('npm run demo:approval', () => {
  it('one analyst requests, her own approval is refused, another approves; sent under the approver with both named', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'mde-demo-approval-'));
    cleanups.push(() => rmSync(outdir, { recursive: true, force: true }));
    const out = execFileSync(process.execPath, [new URL('../../scripts/demo-approval.mjs', import.meta.url).pathname, '--outdir', outdir, '--no-follow'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: baseEnv().NODE_OPTIONS! },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    expect(out).toContain('outcome: approval_pending');
    expect(out).toMatch(/Error \(policy\): Refused by the two-person rule/);
    expect(out).toContain('Confirmation prompt shown to bob');
    expect(out).toContain('outcome: submitted, requestor: bob@simulator.invalid, comment: "INC-2047: malware removed, device re-scanned clean (requested by ada@simulator.invalid, approved by bob@simulator.invalid)"');
    expect(out).toContain('status: approved');
    // Following the action to completion is the stdio demo's test (it waits for the simulated device).
  });

  it('the stand-in analysts cannot be enabled against a real tenant: the server refuses to start (exit 2)', () => {
    const r = spawnSync(process.execPath, [ENTRY, '--transport', 'http', '--port', '0', '--http-auth', 'simulated-users', '--approval', 'two-person'], {
      encoding: 'utf8',
      env: { ...baseEnv(), AZURE_TENANT_ID: 'contoso.onmicrosoft.com', AZURE_CLIENT_ID: '6b0c5e1a-2f3d-4c4e-9a8b-1c2d3e4f5a6b', AZURE_CLIENT_SECRET: 'x-secret-value' },
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MDE_HTTP_AUTH=simulated-users .*works only with --simulator on a loopback bind/);
  });

  it('two-person over stdio (one identity) refuses to start, saying why (exit 2)', () => {
    const r = spawnSync(process.execPath, [ENTRY, '--simulator', '--approval', 'two-person'], { encoding: 'utf8', env: baseEnv(), timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MDE_APPROVAL=two-person .*needs remote mode with Entra sign-in.*one identity cannot be two people/);
    expect(r.stdout).toBe('');
  });
});
