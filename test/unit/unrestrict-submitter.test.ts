/** The unrestrict submitter (src/defender/unrestrict.ts): the history line, and never sending twice (the clock-skew clause, unknown outcomes). */
import { describe, expect, it } from 'vitest';
import type { MachineAction } from '../../src/defender/schemas.js';
import { createUnrestrictSubmitter, describeHistory } from '../../src/defender/unrestrict.js';
import { ToolError } from '../../src/errors.js';
import { fakeApi } from '../helpers/fake-defender-api.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

describe('the history line', () => {
  const a = (over: Partial<MachineAction>): MachineAction => ({ id: 'x', type: 'RestrictCodeExecution', status: 'Succeeded', requestor: 'soc@contoso.com', lastUpdateDateTimeUtc: '2026-11-01T10:00:00Z', ...over });
  it('says what the newest restrict/unrestrict action did', () => {
    expect(describeHistory([])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'Isolate' })])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'UnrestrictCodeExecution' }), a({})])).toBe('the restriction was lifted on 2026-11-01T10:00:00Z by soc@contoso.com');
    expect(describeHistory([a({ type: 'Isolate' }), a({})])).toBe('the restriction was applied on 2026-11-01T10:00:00Z by soc@contoso.com');
    expect(describeHistory([a({ status: 'Failed' })])).toBe('the last request to apply the restriction ended Failed on 2026-11-01T10:00:00Z (by soc@contoso.com)');
  });
});

describe('never twice: the clock-skew clause and unknown outcomes', () => {
  const NOW = Date.parse('2026-11-29T12:00:00Z');
  const action = (over: Partial<MachineAction> = {}): MachineAction => ({ id: 'a', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date(NOW).toISOString(), ...over });
  const api = fakeApi;
  it('a 201 carrying the same comment but created well before the request is an older pending action', async () => {
    const older = createUnrestrictSubmitter({ api: api(async () => action({ creationDateTimeUtc: new Date(NOW - 16_000).toISOString() })).api, now: () => NOW });
    expect(await older.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending' });
    const withinSkew = createUnrestrictSubmitter({ api: api(async () => action({ creationDateTimeUtc: new Date(NOW - 14_000).toISOString() })).api, now: () => NOW });
    expect(await withinSkew.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted' });
  });

  it('after an unknown outcome, the next submit for the device looks for a pending action first and does not POST', async () => {
    let fail = true;
    const pending = action({ id: 'p' });
    const listed: MachineAction[] = [];
    const fake = api(async () => {
      if (fail) {
        fail = false;
        throw new ToolError('outcome_unknown', 'timed out', 'check');
      }
      return action({ id: 'second' });
    }, listed);
    const s = createUnrestrictSubmitter({ api: fake.api, now: () => NOW });
    // The lookup right after the failure sees nothing yet (Defender lists it only later)...
    await expect(s.submit(DEVICE, 'INC-1')).rejects.toThrow(/timed out/);
    listed.push(pending);
    // ...the next call (separately confirmed) looks first.
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'p' } });
    expect(fake.calls.posts).toBe(1);
    // Once nothing is pending any more, a new POST is allowed again.
    listed.length = 0;
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted', action: { id: 'second' } });
    expect(fake.calls.posts).toBe(2);
  });
});
