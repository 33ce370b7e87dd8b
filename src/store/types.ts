/**
 * The state replicas must share to keep the server's promises when several run for one app registration:
 * the Defender call budget, the ledger of spent confirmation tokens, one write per device at a time, and
 * pending approvals. Two implementations: in-process memory (one replica, the default) and Redis
 * (MDE_REDIS_URL). Every operation is atomic in both; a Redis failure throws a store_unavailable ToolError, and
 * callers send nothing without the answer.
 */

import type { ApprovalStore } from '../approval/store.js';
import type { TokenLedger } from '../confirmation/token.js';

export type { TokenLedger };

export interface BudgetOptions {
  perMinute: number;
  perHour: number;
  /** A call whose slot is further away than this is refused at once (rate_limited), reserving nothing. */
  maxWaitMs: number;
  /** Calls one user may make in any rolling minute (HTTP mode); undefined: no per-user share. */
  perUserPerMinute?: number | undefined;
  /**
   * Extra spacing between a slot and the one a full window later, absorbing the spread of network paths
   * (replicas to Defender): without it, a burst sent exactly a minute after the previous one can reach
   * Defender a few milliseconds inside its window and draw a 429. 0 (the default): exact windows.
   */
  guardMs?: number;
  /** Window lengths; only tests shorten them. */
  minuteMs?: number;
  hourMs?: number;
  /** Told when a call has to wait (for a log line or an MCP notification). */
  onWait?: (waitMs: number) => void;
}

export interface AcquireOptions {
  /** Whose share the call counts against (a stable user id in HTTP mode); none in stdio mode. */
  user?: string | undefined;
  /** The call's cancellation: a call cancelled while it waits gives its slot back and sends nothing. */
  signal?: AbortSignal | undefined;
}

/**
 * At most `perMinute` calls in any rolling minute and `perHour` in any rolling hour, across everything
 * that shares the budget. Each call reserves the earliest slot that keeps both limits (calls run in order
 * and as early as the budget allows, never earlier), then waits for it.
 */
export interface RateBudget {
  /** Wait for a slot (bounded), then return. Throws a rate_limited ToolError when the wait would pass the bound. */
  acquire(opts?: AcquireOptions): Promise<void>;
  /** After an upstream 429 with Retry-After: hold every call (every replica's) for this long. */
  pauseFor(ms: number): Promise<void>;
  /** Slots granted or reserved up to now in the rolling minute and hour (the metrics' budget gauges). */
  usage?(): { minute: number; hour: number } | Promise<{ minute: number; hour: number }>;
}

export interface SingleFlightContext {
  /**
   * True when an earlier holder of this key stopped without finishing (a replica died mid-write): look
   * for an action already pending before sending anything.
   */
  recovering: boolean;
}

export type SingleFlightResult<T> = { joined: false; value: T } | { joined: true; value: T };

/** One write per key (device) at a time, across replicas. */
export interface SingleFlight {
  /**
   * Run `fn` as the only holder of `key`. A caller that finds `key` held waits for the holder and gets
   * its value (`joined: true`) when `shareable(value)` says so; otherwise (the holder failed, or its value
   * is not to be shared) it runs `fn` itself. Values cross processes as JSON.
   */
  run<T>(key: string, fn: (ctx: SingleFlightContext) => Promise<T>, shareable?: (value: T) => boolean): Promise<SingleFlightResult<T>>;
}

/** The two-person rule's approvals (src/approval/store.ts): each decided exactly once, on any replica. */
export type { ApprovalStore };

export interface SharedState {
  readonly kind: 'memory' | 'redis';
  /** Where the state lives, for logs and errors (never a password). */
  readonly description: string;
  budget(options: BudgetOptions): RateBudget;
  /** Spent confirmation tokens (by nonce): each token is redeemed once, on any replica. */
  readonly tokens: TokenLedger;
  readonly devices: SingleFlight;
  readonly approvals: ApprovalStore;
  /** Whether the state can be used right now (for a readiness probe). */
  ready(): boolean;
  close(): Promise<void>;
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
