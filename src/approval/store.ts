/**
 * Where approvals live (the two-person rule). A small interface so that a shared store (Redis) can hold
 * them for several replicas; `MemoryApprovalStore` is the one-process default. The store owns the one
 * rule that must be atomic: an approval is decided exactly once, and not after it expired (except by
 * expiring it).
 */
import type { DevicePreview } from '../confirmation/render.js';
import type { MachineAction } from '../defender/schemas.js';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'failed';

/** Someone in an approval: the requester or the one who decided. Never holds a token. */
export interface ApprovalPerson {
  kind: 'user' | 'app' | 'anonymous';
  /** `principalKey` of the caller: what "the same person" means. */
  principal: string;
  /** How people read it: the sign-in name (or the app id). */
  name: string;
  oid?: string;
  tid?: string;
  appId?: string;
}

export interface Approval {
  id: string;
  status: ApprovalStatus;
  /** The write that waits: only lifting a restriction needs a second person today. */
  action: 'unrestrict';
  tool: string;
  machineId: string;
  /** The requester's comment, as they confirmed it. */
  comment: string;
  /** The device as the requester saw it. */
  preview: DevicePreview;
  requestedBy: ApprovalPerson;
  requestedAt: string;
  expiresAt: string;
  decidedBy?: ApprovalPerson;
  decidedAt?: string;
  /** Why it was rejected, or why sending failed. */
  reason?: string;
  /** Once sent: what Defender answered. */
  outcome?: 'submitted' | 'already_pending';
  machineAction?: MachineAction;
  /** The comment recorded in Defender (the requester's, naming both people). */
  sentComment?: string;
}

export type Decision =
  | { status: 'approved'; by: ApprovalPerson; at: string }
  | { status: 'rejected'; by: ApprovalPerson; at: string; reason: string }
  | { status: 'expired'; at: string };

/** `won`: this decision was the one applied. Otherwise `approval` is how it stands (decided by whom, or expired). */
export type DecideResult = { won: true; approval: Approval } | { won: false; approval: Approval; expired: boolean };

/** What sending an approved action came to. */
export type Completion =
  | { status: 'approved'; outcome: 'submitted' | 'already_pending'; machineAction?: MachineAction; sentComment: string }
  | { status: 'failed'; reason: string; sentComment: string };

export interface ApprovalStore {
  create(approval: Approval): Promise<void>;
  get(id: string): Promise<Approval | undefined>;
  /** Every approval still marked pending (some may be past their expiry: the caller expires them). */
  pending(): Promise<Approval[]>;
  /**
   * Atomically: a pending approval takes this decision, once. Approving or rejecting needs it unexpired at
   * `nowMs`; expiring needs it expired. Undefined when there is no such approval.
   */
  decide(id: string, decision: Decision, nowMs: number): Promise<DecideResult | undefined>;
  /** Record what sending an approved action came to. */
  complete(id: string, completion: Completion): Promise<void>;
}

/** The decision rule every store applies (the Redis store applies the same in its script). */
export function applies(approval: Approval, decision: Decision, nowMs: number): { ok: boolean; expired: boolean } {
  const expired = nowMs >= Date.parse(approval.expiresAt);
  if (approval.status !== 'pending') return { ok: false, expired: approval.status === 'expired' };
  return { ok: decision.status === 'expired' ? expired : !expired, expired };
}

export function decided(approval: Approval, decision: Decision): Approval {
  if (decision.status === 'expired') return { ...approval, status: 'expired', decidedAt: decision.at };
  return { ...approval, status: decision.status, decidedBy: decision.by, decidedAt: decision.at, ...(decision.status === 'rejected' ? { reason: decision.reason } : {}) };
}

export function completed(approval: Approval, c: Completion): Approval {
  return c.status === 'approved'
    ? { ...approval, outcome: c.outcome, ...(c.machineAction ? { machineAction: c.machineAction } : {}), sentComment: c.sentComment }
    : { ...approval, status: 'failed', reason: c.reason, sentComment: c.sentComment };
}

/** Decided approvals are kept this long after they expire (for get_approval), then forgotten. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600_000;

export class MemoryApprovalStore implements ApprovalStore {
  private readonly approvals = new Map<string, Approval>();
  constructor(private readonly opts: { now?: () => number; retentionMs?: number } = {}) {}

  async create(approval: Approval): Promise<void> {
    this.prune();
    if (this.approvals.has(approval.id)) throw new Error(`approval ${approval.id} exists`);
    this.approvals.set(approval.id, structuredClone(approval));
  }
  async get(id: string): Promise<Approval | undefined> {
    const a = this.approvals.get(id);
    return a ? structuredClone(a) : undefined;
  }
  async pending(): Promise<Approval[]> {
    return [...this.approvals.values()].filter((a) => a.status === 'pending').map((a) => structuredClone(a));
  }
  // Synchronous between reading and writing: JavaScript's one thread makes it atomic in one process.
  async decide(id: string, decision: Decision, nowMs: number): Promise<DecideResult | undefined> {
    const current = this.approvals.get(id);
    if (!current) return undefined;
    const rule = applies(current, decision, nowMs);
    if (!rule.ok) return { won: false, approval: structuredClone(current), expired: rule.expired };
    const next = decided(current, decision);
    this.approvals.set(id, next);
    return { won: true, approval: structuredClone(next) };
  }
  async complete(id: string, completion: Completion): Promise<void> {
    const current = this.approvals.get(id);
    if (current?.status === 'approved') this.approvals.set(id, completed(current, completion));
  }

  private prune(): void {
    const cutoff = (this.opts.now ?? Date.now)() - (this.opts.retentionMs ?? DEFAULT_RETENTION_MS);
    for (const [id, a] of this.approvals) if (a.status !== 'pending' && Date.parse(a.expiresAt) < cutoff) this.approvals.delete(id);
  }
}
