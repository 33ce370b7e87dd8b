/** The Defender layer's duplicate detection, against a fake DefenderApi: never two POSTs for one lift. */
import { describe, expect, it } from 'vitest';
import type { DefenderApi } from '../../src/defender/client.js';
import type { MachineAction } from '../../src/defender/schemas.js';
import { createUnrestrictSubmitter } from '../../src/defender/unrestrict.js';
import { ToolError, alreadyInProgress } from '../../src/errors.js';
import type { SingleFlight } from '../../src/store/types.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const NOW = Date.parse('2026-11-29T12:00:00Z');

function action(over: Partial<MachineAction> = {}): MachineAction {
  return { id: 'a-new', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date(NOW).toISOString(), ...over };
}

function fakeApi(post: () => Promise<MachineAction>, listed: MachineAction[] = []) {
  const calls = { posts: 0, lists: 0 };
  const api = {
    unrestrictCodeExecution: async () => {
      calls.posts++;
      return post();
    },
    listMachineActions: async () => {
      calls.lists++;
      return listed;
    },
  } as unknown as DefenderApi;
  return { api, calls };
}

describe('createUnrestrictSubmitter', () => {
  it('reports a fresh 201 as submitted, and the same action again as already_pending', async () => {
    const { api } = fakeApi(async () => action());
    const s = createUnrestrictSubmitter({ api, now: () => NOW });
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted', httpStatus: 201, action: { id: 'a-new' } });
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'a-new' } });
  });

  it('recognises an older pending action in a 201 by its comment or its age', async () => {
    const byComment = createUnrestrictSubmitter({ api: fakeApi(async () => action({ id: 'old', requestorComment: 'INC-0' })).api, now: () => NOW });
    expect(await byComment.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'old' } });
    const old = action({ id: 'old', creationDateTimeUtc: new Date(NOW - 60_000).toISOString() });
    const byAge = createUnrestrictSubmitter({ api: fakeApi(async () => old).api, now: () => NOW });
    expect(await byAge.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'old' } });
  });

  it('turns "already in progress" into the pending action, or an upstream error when there is none', async () => {
    const pending = action({ id: 'pending' });
    const found = fakeApi(async () => Promise.reject(alreadyInProgress({ status: 400 })), [pending, action({ id: 'done', status: 'Succeeded' })]);
    expect(await createUnrestrictSubmitter({ api: found.api }).submit(DEVICE, 'INC-1')).toEqual({ outcome: 'already_pending', action: pending, httpStatus: 400 });
    const none = fakeApi(async () => Promise.reject(alreadyInProgress({ status: 400 })), []);
    await expect(createUnrestrictSubmitter({ api: none.api }).submit(DEVICE, 'INC-1')).rejects.toMatchObject({ kind: 'upstream', message: /no pending or in-progress unrestrict action/ });
  });

  it('never re-sends a write whose outcome is unknown: it looks the action up instead', async () => {
    const unknown = new ToolError('outcome_unknown', 'timed out', 'check');
    const found = fakeApi(async () => Promise.reject(unknown), [action({ id: 'landed' })]);
    expect(await createUnrestrictSubmitter({ api: found.api }).submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'landed' } });
    expect(found.calls.posts).toBe(1);
    const lost = fakeApi(async () => Promise.reject(unknown), []);
    await expect(createUnrestrictSubmitter({ api: lost.api }).submit(DEVICE, 'INC-1')).rejects.toBe(unknown);
    expect(lost.calls.posts).toBe(1);
  });

  it('lets concurrent calls for one device share one POST', async () => {
    let release!: (a: MachineAction) => void;
    const { api, calls } = fakeApi(() => new Promise<MachineAction>((resolve) => (release = resolve)));
    const s = createUnrestrictSubmitter({ api, now: () => NOW });
    const first = s.submit(DEVICE, 'INC-1');
    const second = s.submit(DEVICE, 'INC-1');
    await Promise.resolve();
    release(action());
    expect(await first).toMatchObject({ outcome: 'submitted' });
    expect(await second).toMatchObject({ outcome: 'already_pending', action: { id: 'a-new' } });
    expect(calls.posts).toBe(1);
  });
});

describe('createUnrestrictSubmitter after a replica died holding the device lock', () => {
  /** A single-flight that reports its last holder stopped mid-write (as the Redis lock does). */
  const recovering: SingleFlight = { run: async (_key, fn) => ({ joined: false, value: await fn({ recovering: true }) }) };

  it('looks for a pending action first and sends nothing when there is one', async () => {
    const pending = action({ id: 'a-from-dead-replica', creationDateTimeUtc: new Date(NOW - 60_000).toISOString() });
    const { api, calls } = fakeApi(async () => action(), [pending]);
    const s = createUnrestrictSubmitter({ api, now: () => NOW, flights: recovering });
    expect(await s.submit(DEVICE, 'INC-1')).toEqual({ outcome: 'already_pending', action: pending });
    expect(calls).toEqual({ posts: 0, lists: 1 });
  });

  it('sends when nothing is pending, or when the lookup itself fails (Defender\'s own "already in progress" is the last line)', async () => {
    const { api, calls } = fakeApi(async () => action(), []);
    expect(await createUnrestrictSubmitter({ api, now: () => NOW, flights: recovering }).submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted' });
    expect(calls).toEqual({ posts: 1, lists: 1 });
    const failing = { ...api, listMachineActions: async () => Promise.reject(new ToolError('permission', 'no Machine.Read.All', 'grant it')) } as DefenderApi;
    expect(await createUnrestrictSubmitter({ api: failing, now: () => NOW, flights: recovering }).submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted' });
  });

  it('a concurrent caller on another replica gets the holder\'s action as already_pending', async () => {
    const joined: SingleFlight = { run: async () => ({ joined: true, value: { outcome: 'submitted', action: action({ id: 'theirs' }) } as never }) };
    const { api, calls } = fakeApi(async () => action());
    expect(await createUnrestrictSubmitter({ api, now: () => NOW, flights: joined }).submit(DEVICE, 'INC-1')).toEqual({ outcome: 'already_pending', action: action({ id: 'theirs' }) });
    expect(calls.posts).toBe(0);
  });
});
