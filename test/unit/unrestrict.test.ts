/** The Defender layer's duplicate detection, against a fake DefenderApi: never two POSTs for one lift. */
import { describe, expect, it } from 'vitest';
import type { DefenderApi } from '../../src/defender/client.js';
import type { MachineAction } from '../../src/defender/schemas.js';
import { createUnrestrictSubmitter, describeHistory } from '../../src/defender/unrestrict.js';
import { ToolError, alreadyInProgress } from '../../src/errors.js';
import type { SingleFlight } from '../../src/store/types.js';
import { fakeApi } from '../helpers/fake-defender-api.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const NOW = Date.parse('2026-11-29T12:00:00Z');

function action(over: Partial<MachineAction> = {}): MachineAction {
  return { id: 'a-new', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date(NOW).toISOString(), ...over };
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

describe('describeHistory: the history line the human reads', () => {
  const a = (over: Partial<MachineAction>) => ({ id: 'x', ...over }) as MachineAction;
  it('names the newest restrict/unrestrict action, its state, when and by whom', () => {
    expect(describeHistory([])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'Isolate', status: 'Pending' })])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'Isolate' }), a({ type: 'UnrestrictCodeExecution', status: 'Succeeded', requestor: 'ana', lastUpdateDateTimeUtc: 'U', creationDateTimeUtc: 'C' })])).toBe('the restriction was lifted on U by ana');
    expect(describeHistory([a({ type: 'RestrictCodeExecution', status: 'Succeeded', creationDateTimeUtc: 'C' })])).toBe('the restriction was applied on C by an unknown requestor');
    expect(describeHistory([a({ type: 'RestrictCodeExecution', status: 'Succeeded' })])).toBe('the restriction was applied on an unknown date by an unknown requestor');
    expect(describeHistory([a({ type: 'UnrestrictCodeExecution', status: 'Pending', requestor: 'ana', lastUpdateDateTimeUtc: 'U', creationDateTimeUtc: 'C' })])).toBe('a request to lift the restriction is Pending since C (by ana)');
    expect(describeHistory([a({ type: 'RestrictCodeExecution', status: 'InProgress', requestor: 'bo', lastUpdateDateTimeUtc: 'U' })])).toBe('a request to apply the restriction is InProgress since U (by bo)');
    expect(describeHistory([a({ type: 'UnrestrictCodeExecution', status: 'Failed', requestor: 'ana', lastUpdateDateTimeUtc: 'U' })])).toBe('the last request to lift the restriction ended Failed on U (by ana)');
    expect(describeHistory([a({ type: 'RestrictCodeExecution', requestor: 'ana', creationDateTimeUtc: 'C' })])).toBe('the last request to apply the restriction ended in an unknown state on C (by ana)');
  });
});

describe('createUnrestrictSubmitter.history', () => {
  it('reads the device\'s actions once, keeps this device\'s only, and reports an open unrestrict as pending', async () => {
    const seen: unknown[] = [];
    const other = action({ id: 'other', machineId: 'f'.repeat(40), status: 'Succeeded', requestor: 'mallory' });
    const restrictPending = action({ id: 'r', type: 'RestrictCodeExecution', status: 'Pending', requestor: 'ana' });
    const api = { listMachineActions: async (q: unknown) => (seen.push(q), [other, restrictPending]) } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api }).history(DEVICE)).toEqual({ summary: `a request to apply the restriction is Pending since ${new Date(NOW).toISOString()} (by ana)` });
    expect(seen).toEqual([{ machineId: DEVICE }]);
    const open = action({ id: 'open', machineId: DEVICE.toUpperCase(), status: 'InProgress' });
    const api2 = { listMachineActions: async () => [other, open] } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api: api2 }).history(DEVICE)).toMatchObject({ pending: { id: 'open' } });
    const unnamed = { listMachineActions: async () => [action({ id: 'unnamed', machineId: undefined })] } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api: unnamed }).history(DEVICE)).toMatchObject({ pending: { id: 'unnamed' } });
    const done = { listMachineActions: async () => [action({ status: 'Succeeded' })] } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api: done }).history(DEVICE)).not.toHaveProperty('pending');
  });

  it('goes on without the look when the app may not read actions; any other error ends the call', async () => {
    const denied = { listMachineActions: async () => Promise.reject(new ToolError('permission', 'no', 'grant')) } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api: denied }).history(DEVICE)).toBeUndefined();
    const broken = new ToolError('upstream', 'boom', 'later');
    const failing = { listMachineActions: async () => Promise.reject(broken) } as unknown as DefenderApi;
    await expect(createUnrestrictSubmitter({ api: failing }).history(DEVICE)).rejects.toBe(broken);
  });
});

describe('createUnrestrictSubmitter: which action counts as the pending one', () => {
  it('asks for this device\'s unrestrict actions and ignores other devices, other types and closed actions', async () => {
    const seen: unknown[] = [];
    const listed = [
      action({ id: 'other-device', machineId: 'f'.repeat(40) }),
      action({ id: 'restrict', type: 'RestrictCodeExecution' }),
      action({ id: 'done', status: 'Succeeded' }),
      action({ id: 'mine', machineId: DEVICE.toUpperCase(), type: undefined, status: 'InProgress' }),
    ];
    const api = {
      unrestrictCodeExecution: async () => Promise.reject(alreadyInProgress({ status: 400 })),
      listMachineActions: async (q: unknown) => (seen.push(q), listed),
    } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api }).submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'mine' }, httpStatus: 400 });
    expect(seen).toEqual([{ machineId: DEVICE, type: 'UnrestrictCodeExecution' }]);
    const none = { ...api, listMachineActions: async () => listed.slice(0, 3) } as unknown as DefenderApi;
    await expect(createUnrestrictSubmitter({ api: none }).submit(DEVICE, 'INC-1')).rejects.toMatchObject({
      kind: 'upstream',
      message: 'Defender says an action is already in progress for this device, but no pending or in-progress unrestrict action was found.',
      nextStep: 'Another action on the device (for example a restriction or an isolation) may still be running: check the device\'s Action center in the Defender portal, then call again later.',
    });
  });

  it('says why the pending action is missing when it cannot be read', async () => {
    const api = {
      unrestrictCodeExecution: async () => Promise.reject(alreadyInProgress({ status: 400 })),
      listMachineActions: async () => Promise.reject(new ToolError('permission', 'no Machine.Read.All', 'grant')),
    } as unknown as DefenderApi;
    expect(await createUnrestrictSubmitter({ api }).submit(DEVICE, 'INC-1')).toEqual({ outcome: 'already_pending', httpStatus: 400, note: 'The pending action could not be read: no Machine.Read.All' });
  });

  it('after an unknown outcome, looks before the next POST once, then sends as usual', async () => {
    let fail = true;
    const { api, calls } = fakeApi(async () => {
      if (fail) throw new ToolError('outcome_unknown', 'timed out', 'check');
      return action();
    });
    const s = createUnrestrictSubmitter({ api, now: () => NOW });
    await expect(s.submit(DEVICE, 'INC-1')).rejects.toMatchObject({ kind: 'outcome_unknown' });
    expect(calls).toEqual({ posts: 1, lists: 1 });
    fail = false;
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted' });
    expect(calls).toEqual({ posts: 2, lists: 2 });
    expect(await s.submit(DEVICE, 'INC-2')).toMatchObject({ outcome: 'already_pending' });
    expect(calls).toEqual({ posts: 3, lists: 2 });
  });

  it('remembers the actions it reported as submitted (a bounded memory of 1,000 ids)', async () => {
    let id = 'a0';
    const s = createUnrestrictSubmitter({ api: fakeApi(async () => action({ id, requestorComment: null as never })).api, now: () => NOW });
    expect(await s.submit(DEVICE, 'x')).toMatchObject({ outcome: 'submitted' });
    id = 'a1';
    expect(await s.submit(DEVICE, 'x')).toMatchObject({ outcome: 'submitted' });
    id = 'a0';
    expect(await s.submit(DEVICE, 'x')).toMatchObject({ outcome: 'already_pending', action: { id: 'a0' } });
    for (let i = 2; i <= 1000; i++) {
      id = `a${i}`;
      await s.submit(DEVICE, 'x');
    }
    // The memory was full at the 1,001st id and started afresh: a0 is forgotten.
    id = 'a0';
    expect(await s.submit(DEVICE, 'x')).toMatchObject({ outcome: 'submitted' });
  });
});
