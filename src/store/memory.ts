/**
 * The state of one replica, in this process: today's behaviour when MDE_REDIS_URL is unset.
 */
import { budgetSpent, cancelledWait, planSlot, waitUnlessAborted } from './budget.js';
import {
  HOUR_MS,
  MINUTE_MS,
  type AcquireOptions,
  type BudgetOptions,
  type RateBudget,
  type SharedState,
  type SingleFlight,
  type SingleFlightContext,
  type SingleFlightResult,
} from './types.js';
import { MemoryApprovalStore } from '../approval/store.js';
import { MemoryTokenLedger } from '../confirmation/token.js';

export interface Clock {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What every budget of one process shares. */
export class BudgetSlots {
  /** Granted and reserved slot times, ascending; only the last hour's are kept. */
  readonly slots: number[] = [];
  /** Per user: their slots, ascending; only the last minute's are kept. */
  readonly userSlots = new Map<string, number[]>();
  pausedUntil = 0;
}

/**
 * The budget every Defender call takes a slot from, in one process: at most `perMinute` in any rolling
 * minute and `perHour` in any rolling hour (Defender documents 100 and 1,500 per app). Each call reserves
 * the earliest slot that keeps both limits, so calls run in order and as early as the budget allows, never
 * earlier. A call whose slot is further away than `maxWaitMs` is refused at once with the time the budget
 * frees up. Several replicas of one app registration share the Redis store's budget (src/store/redis.ts),
 * the same decision in a Lua script.
 */
export class MemoryRateBudget implements RateBudget {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly minute: number;
  private readonly hour: number;

  constructor(
    private readonly opts: BudgetOptions,
    clock: Clock = {},
    private readonly state = new BudgetSlots(),
  ) {
    this.now = clock.now ?? Date.now;
    this.sleep = clock.sleep ?? realSleep;
    // Slots are kept as long as they constrain the next one: a window plus the guard.
    this.minute = (opts.minuteMs ?? MINUTE_MS) + (opts.guardMs ?? 0);
    this.hour = (opts.hourMs ?? HOUR_MS) + (opts.guardMs ?? 0);
  }

  async acquire(options: AcquireOptions = {}): Promise<void> {
    const start = this.now();
    if (options.signal?.aborted) throw cancelledWait();
    for (;;) {
      const now = this.now();
      while (this.state.slots.length > 0 && this.state.slots[0]! <= now - this.hour) this.state.slots.shift();
      const mine = options.user !== undefined && this.opts.perUserPerMinute ? this.userSlotsOf(options.user, now) : undefined;
      const remaining = this.opts.maxWaitMs - (now - start);
      const decision = planSlot(this.state.slots, this.state.pausedUntil, mine, now, this.opts, remaining);
      if (decision.kind === 'refused') throw budgetSpent(this.opts, decision.waitMs, now, 'shared');
      if (decision.kind === 'user_wait') {
        if (decision.waitMs > remaining) throw budgetSpent(this.opts, decision.waitMs, now, 'user');
        this.opts.onWait?.(decision.waitMs);
        if (await waitUnlessAborted(this.sleep(decision.waitMs), options.signal)) throw cancelledWait();
        continue;
      }
      this.state.slots.push(decision.at);
      mine?.push(decision.at);
      if (decision.waitMs > 0) {
        this.opts.onWait?.(decision.waitMs);
        if (await waitUnlessAborted(this.sleep(decision.waitMs), options.signal)) {
          // Give the slot back: a subset of a schedule that keeps the limits keeps them too.
          removeOne(this.state.slots, decision.at);
          if (mine) removeOne(mine, decision.at);
          throw cancelledWait();
        }
        // A 429 while this call waited holds it too: give the slot back and reserve again after the pause.
        if (this.state.pausedUntil > this.now()) {
          removeOne(this.state.slots, decision.at);
          if (mine) removeOne(mine, decision.at);
          continue;
        }
      }
      return;
    }
  }

  async pauseFor(ms: number): Promise<void> {
    this.state.pausedUntil = Math.max(this.state.pausedUntil, this.now() + ms);
  }

  /** Calls granted or reserved in the rolling minute and hour ending at `now` (for tests and benchmarks). */
  usage(now = this.now()): { minute: number; hour: number } {
    return {
      minute: this.state.slots.filter((t) => t > now - this.minute && t <= now).length,
      hour: this.state.slots.filter((t) => t > now - this.hour && t <= now).length,
    };
  }

  private userSlotsOf(user: string, now: number): number[] {
    // Forget users idle for a minute, so the map stays as small as the set of active users.
    for (const [u, times] of this.state.userSlots) {
      while (times.length > 0 && times[0]! <= now - this.minute) times.shift();
      if (times.length === 0 && u !== user) this.state.userSlots.delete(u);
    }
    let mine = this.state.userSlots.get(user);
    if (!mine) this.state.userSlots.set(user, (mine = []));
    return mine;
  }
}

function removeOne(times: number[], at: number): void {
  const i = times.lastIndexOf(at);
  if (i >= 0) times.splice(i, 1);
}

export class MemorySingleFlight implements SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: (ctx: SingleFlightContext) => Promise<T>, shareable: (value: T) => boolean = () => true): Promise<SingleFlightResult<T>> {
    for (let running = this.inFlight.get(key); running; running = this.inFlight.get(key)) {
      const first = await running.then(
        (value) => ({ ok: true as const, value: value as T }),
        () => ({ ok: false as const }),
      );
      if (first.ok && shareable(first.value)) return { joined: true, value: first.value };
      // The holder failed: the next waiter (maybe this one) runs it; the others wait for that one.
    }
    const attempt: Promise<T> = fn({ recovering: false }).finally(() => {
      if (this.inFlight.get(key) === attempt) this.inFlight.delete(key);
    });
    this.inFlight.set(key, attempt);
    return { joined: false, value: await attempt };
  }
}

export function createMemoryState(clock: Clock = {}): SharedState {
  const now = clock.now ?? Date.now;
  const slots = new BudgetSlots();
  return {
    kind: 'memory',
    description: 'in this process (one replica)',
    budget: (options) => new MemoryRateBudget(options, clock, slots),
    tokens: new MemoryTokenLedger(now),
    devices: new MemorySingleFlight(),
    approvals: new MemoryApprovalStore({ now }),
    ready: () => true,
    close: async () => undefined,
  };
}
