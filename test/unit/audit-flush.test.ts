/** The audit record is on disk before write() returns: appended and flushed (fdatasync), then closed. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      calls.push('open');
      return new Proxy(fh, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...a: unknown[]) => {
            calls.push(String(prop));
            return (value as (...x: unknown[]) => unknown).apply(target, a);
          };
        },
      });
    },
  };
});

const { JsonlAuditTrail } = await import('../../src/audit.js');
const dir = mkdtempSync(join(tmpdir(), 'mde-audit-flush-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('JsonlAuditTrail.write', () => {
  it('appends, flushes to disk and closes before it returns', async () => {
    const path = join(dir, 'audit.jsonl');
    const trail = new JsonlAuditTrail(path, () => Date.parse('2026-11-29T12:00:00Z'));
    calls.length = 0;
    await trail.write({ requestId: 'r', event: 'intent', tool: 't', action: 'unrestrict', client: null, machineId: 'm', hostName: null, comment: 'c', confirmation: 'skipped_by_flag' });
    expect(calls).toEqual(['open', 'appendFile', 'datasync', 'close']);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ time: '2026-11-29T12:00:00.000Z', requestId: 'r', event: 'intent' });
  });

  it('a failed flush refuses: the caller learns the record may not be on disk', async () => {
    const trail = new JsonlAuditTrail(join(dir, 'missing-dir', 'audit.jsonl'));
    await expect(trail.write({ requestId: 'r', event: 'intent', tool: 't', action: 'a', client: null, machineId: 'm', hostName: null, comment: 'c', confirmation: 'x' })).rejects.toMatchObject({ kind: 'audit_unavailable' });
  });
});
