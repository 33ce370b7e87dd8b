/**
 * The budget's decision, shared by the in-memory budget and (line for line) by the Redis script in
 * redis-scripts.ts: given the reserved slots, where does the next call go?
 */
import { ToolError } from '../errors.js';
import { HOUR_MS, MINUTE_MS, type BudgetOptions } from './types.js';

export type SlotDecision =
  /** Reserved at `at` (wait `waitMs`). */
  | { kind: 'granted'; at: number; waitMs: number }
  /** The shared budget's earliest slot is too far away: nothing reserved. */
  | { kind: 'refused'; waitMs: number }
  /**
   * This user's share is spent for `waitMs`: nothing reserved, so other users are not queued behind
   * them; the caller waits (within its bound) and asks again.
   */
  | { kind: 'user_wait'; waitMs: number };

/**
 * `slots`: granted and reserved slot times, ascending, none older than an hour. `userSlots`: the user's
 * own, ascending, none older than a minute. `maxWaitMs`: how much longer the caller may wait. Slots are reserved in order, so with n reserved the next is
 * the (perMinute+1)th after slot n-perMinute and must fall a full minute later (likewise for the hour).
 */
export function planSlot(
  slots: readonly number[],
  pausedUntil: number,
  userSlots: readonly number[] | undefined,
  now: number,
  limits: BudgetOptions,
  maxWaitMs = limits.maxWaitMs,
): SlotDecision {
  const guard = limits.guardMs ?? 0;
  const minute = (limits.minuteMs ?? MINUTE_MS) + guard;
  const hour = (limits.hourMs ?? HOUR_MS) + guard;
  const n = slots.length;
  let at = Math.max(now, pausedUntil, slots[n - 1] ?? 0);
  if (n >= limits.perMinute) at = Math.max(at, slots[n - limits.perMinute]! + minute);
  if (n >= limits.perHour) at = Math.max(at, slots[n - limits.perHour]! + hour);
  const perUser = limits.perUserPerMinute;
  if (perUser && userSlots && userSlots.length >= perUser) {
    const userAt = userSlots[userSlots.length - perUser]! + minute;
    if (userAt > at) return { kind: 'user_wait', waitMs: userAt - now };
  }
  const waitMs = at - now;
  if (waitMs > maxWaitMs) return { kind: 'refused', waitMs };
  return { kind: 'granted', at, waitMs };
}

/** A call cancelled (by its client) while it waited for its slot: the slot is given back, nothing sent. */
export function cancelledWait(): ToolError {
  return new ToolError(
    'not_confirmed',
    'Not performed: the client cancelled the call while it waited for the Defender API budget. Nothing was sent to Defender.',
    'Call again if the action is still wanted.',
  );
}

/** Sleep `ms` (with the given sleep), or less if `signal` aborts first. Resolves true when aborted. */
export async function waitUnlessAborted(sleep: Promise<void>, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return sleep.then(() => false);
  if (signal.aborted) return true;
  let onAbort!: () => void;
  const aborted = new Promise<boolean>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve(true)), { once: true }));
  try {
    return await Promise.race([sleep.then(() => signal.aborted), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The error for a refused call: when the budget frees up, in this process's clock. */
export function budgetSpent(limits: BudgetOptions, waitMs: number, now: number, scope: 'shared' | 'user'): ToolError {
  const at = new Date(now + waitMs).toISOString();
  const next = `Call again after ${at} (in ${Math.ceil(waitMs / 1000)} s).`;
  const details = { retryAfterSeconds: Math.ceil(waitMs / 1000) };
  if (scope === 'user') {
    return new ToolError(
      'rate_limited',
      `Your share of the Defender API budget is spent (${limits.perUserPerMinute} calls a minute per user); nothing was sent.`,
      next,
      {},
      details,
    );
  }
  return new ToolError(
    'rate_limited',
    `This server's Defender API budget is spent (${limits.perMinute} calls a minute, ${limits.perHour} an hour); nothing was sent.`,
    next,
    {},
    details,
  );
}
