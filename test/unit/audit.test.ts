/** The audit trail's start-up check, its refusals, and the caller fields of remote mode. */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { JsonlAuditTrail, NO_AUDIT, REPLICA, auditCaller } from '../../src/audit.js';
import { StartupError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'mde-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const record = { requestId: 'r', event: 'intent' as const, tool: 't', action: 'a', client: null, machineId: 'm', hostName: null, comment: 'c', confirmation: 'x' };

describe('JsonlAuditTrail', () => {
  it('prepare() creates the file with mode 0600 and has nothing to warn about', async () => {
    const path = join(dir, 'new.jsonl');
    expect(await new JsonlAuditTrail(path).prepare()).toBeUndefined();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('prepare() warns when others can read the file, naming the mode', async () => {
    const path = join(dir, 'open.jsonl');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    expect(await new JsonlAuditTrail(path).prepare()).toBe(`The audit log ${path} is readable by others (mode 644); consider chmod 600.`);
  });

  it('prepare() stops the server when the file cannot be written, naming the setting and the reason', async () => {
    const path = join(dir, 'missing', 'audit.jsonl');
    const error = await new JsonlAuditTrail(path).prepare().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).problems).toEqual([`The audit log ${path} cannot be written (ENOENT). Fix MDE_AUDIT_LOG (--audit-log): the path, its folder, permissions, free disk space; or unset it.`]);
  });

  it('write() appends one JSON line per record, time and replica included; a failure names the file and refuses', async () => {
    const path = join(dir, 'lines.jsonl');
    const trail = new JsonlAuditTrail(path, () => 0, { host: 'h', pid: 1 });
    await trail.write(record);
    await trail.write({ ...record, event: 'outcome' });
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual({ time: '1970-01-01T00:00:00.000Z', ...record, replica: { host: 'h', pid: 1 } });
    expect(Object.keys(JSON.parse(lines[1]!)).slice(0, 3)).toEqual(['time', 'requestId', 'event']);
    const bad = new JsonlAuditTrail(join(dir, 'missing', 'x.jsonl'));
    await expect(bad.write(record)).rejects.toMatchObject({
      kind: 'audit_unavailable',
      message: `The audit log ${join(dir, 'missing', 'x.jsonl')} cannot be written (ENOENT), so the action was refused: nothing was sent to Defender.`,
      nextStep: expect.stringMatching(/fix MDE_AUDIT_LOG/),
    });
    expect(new JsonlAuditTrail(path).enabled).toBe(true);
    expect(NO_AUDIT.enabled).toBe(false);
    await expect(NO_AUDIT.write(record)).resolves.toBeUndefined();
  });
});

describe('auditCaller', () => {
  it('names a user, an app, or nobody', () => {
    expect(auditCaller({ kind: 'user', oid: 'o', tid: 't', preferredUsername: 'ada@contoso.com', name: 'Ada' } as never)).toEqual({ user: { oid: 'o', tid: 't', preferred_username: 'ada@contoso.com', name: 'Ada' } });
    expect(auditCaller({ kind: 'user', oid: 'o', tid: 't' } as never)).toEqual({ user: { oid: 'o', tid: 't', preferred_username: null, name: null } });
    expect(auditCaller({ kind: 'app', appId: 'a', oid: 'o', tid: 't' } as never)).toEqual({ app: { appId: 'a', oid: 'o', tid: 't' } });
    expect(auditCaller(undefined)).toEqual({});
  });
});

describe('REPLICA', () => {
  it('names this host and process in every record of a trail built without one', async () => {
    expect(REPLICA).toEqual({ host: hostname(), pid: process.pid });
    const path = join(dir, 'replica.jsonl');
    await new JsonlAuditTrail(path, () => 0).write(record);
    expect(JSON.parse(readFileSync(path, 'utf8')).replica).toEqual({ host: hostname(), pid: process.pid });
  });
});
