/**
 * The process-wide budget for Defender calls: at most `perMinute` in any rolling minute and `perHour` in
 * any rolling hour (Defender documents 100 and 1,500 per app). Each call reserves the earliest slot that
 * keeps both limits, so calls run in order and as early as the budget allows, never earlier. A call whose
 * slot is further away than `maxWaitMs` is refused at once with the time the budget frees up.
 */
import { ToolError } from '../errors.js';
import { abortable } from './abortable.js';

const cancelledWait = () =>
  new ToolError('not_confirmed', 'Not performed: the client cancelled the call while it waited for the Defender API budget. Nothing was sent to Defender.', 'Call again if it is still wanted.');

/**
 * The API budget every Defender call takes a slot from. One process: RateLimiter below; several
 * replicas sharing one app registration: a shared store behind the same two methods.
 */
export interface CallBudget {
  /** Wait for a slot (bounded); throws a rate_limited ToolError when the wait would exceed the bound. The signal ends the wait (and gives the slot back). */
  acquire(signal?: AbortSignal): Promise<void>;
  /** After an upstream 429 with Retry-After: hold every call until then. */
  pauseUntil(time: number): void;
}

export interface RateLimiterOptions {
  perMinute: number;
  perHour: number;
  maxWaitMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Told when a call has to wait (for a log line or an MCP notification). */
  onWait?: (waitMs: number) => void;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

export class RateLimiter implements CallBudget {
  /** Granted and reserved slot times, ascending; only the last hour's are kept. */
  private readonly slots: number[] = [];
  private pausedUntil = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: RateLimiterOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Wait for a slot (bounded), then return. Throws a rate_limited ToolError when the wait would exceed the bound. */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw cancelledWait();
    const now = this.now();
    while (this.slots.length > 0 && this.slots[0]! <= now - HOUR) this.slots.shift();
    const at = this.nextSlot(now);
    const waitMs = at - now;
    if (waitMs > this.opts.maxWaitMs) {
      throw new ToolError(
        'rate_limited',
        `This server's Defender API budget is spent (${this.opts.perMinute} calls a minute, ${this.opts.perHour} an hour); nothing was sent.`,
        `Call again after ${new Date(at).toISOString()} (in ${Math.ceil(waitMs / 1000)} s).`,
        {},
        { retryAfterSeconds: Math.ceil(waitMs / 1000) },
      );
    }
    this.slots.push(at);
    if (waitMs > 0) {
      this.opts.onWait?.(waitMs);
      try {
        await abortable(this.sleep(waitMs), signal, cancelledWait);
      } catch (error) {
        // Cancelled while waiting: the slot was never used, give it back.
        const i = this.slots.lastIndexOf(at);
        if (i >= 0) this.slots.splice(i, 1);
        throw error;
      }
    }
  }

  /** After an upstream 429 with Retry-After: hold every call until then. */
  pauseUntil(time: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, time);
  }

  /** Calls granted or reserved in the rolling minute and hour ending at `now` (for tests and benchmarks). */
  usage(now = this.now()): { minute: number; hour: number } {
    return {
      minute: this.slots.filter((t) => t > now - MINUTE && t <= now).length,
      hour: this.slots.filter((t) => t > now - HOUR && t <= now).length,
    };
  }

  private nextSlot(now: number): number {
    let at = Math.max(now, this.pausedUntil, this.slots.at(-1) ?? 0);
    const n = this.slots.length;
    // With n slots reserved in order, the new one is the (perMinute+1)th after slot n-perMinute: it must
    // fall a full minute later (likewise for the hour).
    if (n >= this.opts.perMinute) at = Math.max(at, this.slots[n - this.opts.perMinute]! + MINUTE);
    if (n >= this.opts.perHour) at = Math.max(at, this.slots[n - this.opts.perHour]! + HOUR);
    return at;
  }
}
