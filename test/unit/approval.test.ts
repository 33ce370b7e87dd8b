/** The two-person rule's pure parts: the decide-once rule of the store, the combined comment, the device scope, the stand-in users' lock. */
import { describe, expect, it } from 'vitest';
import { Approvals, combinedComment } from '../../src/approval/approvals.js';
import { MemoryApprovalStore, type Approval } from '../../src/approval/store.js';
import { NO_AUDIT } from '../../src/audit.js';
import { prepareRemoteAuth } from '../../src/http/run.js';
import type { HttpSettings } from '../../src/http/settings.js';
import { createStderrLogger } from '../../src/log.js';
import { StartupError } from '../../src/errors.js';

const T0 = Date.parse('2026-11-29T12:00:00Z');
const person = (name: string) => ({ kind: 'user' as const, principal: `user:t:${name}`, name });
function approval(id = 'a1'): Approval {
  return {
    id,
    status: 'pending',
    action: 'unrestrict',
    tool: 'remove_app_restriction',
    machineId: 'm',
    comment: 'c',
    preview: { machineId: 'm', hostName: 'h', osPlatform: null, osVersion: null, deviceGroup: 'Finance', healthStatus: null, lastSeen: null, tags: ['VIP'] },
    requestedBy: person('ada'),
    requestedAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 60_000).toISOString(),
  };
}

describe('MemoryApprovalStore', () => {
  it('decides an approval exactly once; the loser sees the winner', async () => {
    const store = new MemoryApprovalStore({ now: () => T0 });
    await store.create(approval());
    const at = new Date(T0).toISOString();
    const [a, b] = await Promise.all([store.decide('a1', { status: 'approved', by: person('bob'), at }, T0), store.decide('a1', { status: 'rejected', by: person('cy'), at, reason: 'no' }, T0)]);
    expect(a).toMatchObject({ won: true, approval: { status: 'approved', decidedBy: { name: 'bob' } } });
    expect(b).toMatchObject({ won: false, expired: false, approval: { status: 'approved', decidedBy: { name: 'bob' } } });
    expect(await store.decide('nope', { status: 'expired', at }, T0)).toBeUndefined();
  });

  it('does not approve after expiry, and expires only once it is due', async () => {
    const store = new MemoryApprovalStore();
    await store.create(approval());
    const at = new Date(T0).toISOString();
    expect(await store.decide('a1', { status: 'expired', at }, T0)).toMatchObject({ won: false });
    expect(await store.decide('a1', { status: 'approved', by: person('bob'), at }, T0 + 60_000)).toMatchObject({ won: false, expired: true });
    expect(await store.decide('a1', { status: 'expired', at }, T0 + 60_000)).toMatchObject({ won: true, approval: { status: 'expired' } });
    expect(await store.pending()).toEqual([]);
  });

  it('hands out copies: a caller cannot change what is stored', async () => {
    const store = new MemoryApprovalStore();
    await store.create(approval());
    const got = (await store.get('a1'))!;
    got.status = 'approved';
    expect((await store.get('a1'))!.status).toBe('pending');
  });
});

describe('combinedComment', () => {
  it('names both people, and shortens only the comment to stay within the limit', () => {
    expect(combinedComment('INC-1: clean', 'ada@contoso.com', 'bob@contoso.com', 1000)).toBe('INC-1: clean (requested by ada@contoso.com, approved by bob@contoso.com)');
    const long = combinedComment('y'.repeat(1000), 'ada', 'bob', 1000);
    expect(long).toHaveLength(1000);
    expect(long.endsWith('… (requested by ada, approved by bob)')).toBe(true);
  });
});

describe('Approvals.required (MDE_APPROVAL_DEVICE_GROUPS, MDE_APPROVAL_TAGS)', () => {
  const make = (deviceGroups: string[], tags: string[]) => new Approvals({ store: new MemoryApprovalStore(), audit: NO_AUDIT, settings: { deviceGroups, tags, ttlMs: 1, approverRole: 'R' } });
  const device = approval().preview;
  it('every device when neither is set; otherwise group or tag, case-insensitively; unreadable devices fail closed', () => {
    expect(make([], []).required(device)).toBe(true);
    expect(make(['finance'], []).required(device)).toBe(true);
    expect(make(['HR'], ['vip']).required(device)).toBe(true);
    expect(make(['HR'], ['Kiosk']).required(device)).toBe(false);
    expect(make(['HR'], []).required({ ...device, note: 'Device details are unavailable' })).toBe(true);
    expect(make(['HR'], []).required(undefined)).toBe(true);
  });
});

describe('stand-in analysts: the second lock', () => {
  it('remote sign-in refuses simulated-users unless the simulator supplies them', () => {
    const settings = { auth: 'simulated-users' } as HttpSettings;
    const logger = createStderrLogger({ level: 'error', write: () => undefined });
    const app = { description: 'app', getToken: async () => 'x', invalidate: () => undefined };
    expect(() => prepareRemoteAuth(settings, undefined, app, logger)).toThrow(StartupError);
  });
});
