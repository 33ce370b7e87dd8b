/** Which action states are final (nothing to cancel, stop polling) and which are open (a lift is under way). */
import { describe, expect, it } from 'vitest';
import { FINAL_ACTION_STATUSES, OPEN_ACTION_STATUSES, machineActionListSchema, machineListSchema } from '../../src/defender/schemas.js';

describe('action states', () => {
  it('final and open are Defender\'s documented statuses, and never overlap', () => {
    expect([...FINAL_ACTION_STATUSES]).toEqual(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);
    expect([...OPEN_ACTION_STATUSES]).toEqual(['Pending', 'InProgress']);
    expect(FINAL_ACTION_STATUSES.has('')).toBe(false);
    expect(OPEN_ACTION_STATUSES.has('')).toBe(false);
  });

  it('a list is read only with a value array of readable entries', () => {
    expect(machineActionListSchema.safeParse({}).success).toBe(false);
    expect(machineListSchema.safeParse({ value: 'x' }).success).toBe(false);
    expect(machineListSchema.safeParse({ value: [] }).success).toBe(true);
  });
});
