/**
 * The two-person rule (MDE_APPROVAL=two-person): which devices need a second person, who may decide, the
 * comment that names both, and the audit records of each step (approval_requested, approval_granted,
 * approval_rejected, approval_expired). The tools call this; the store keeps the approvals and decides
 * each exactly once. It alone marks an approval failed (approved, but not or not surely sent). Nothing here
 * talks to Defender: sending is the caller's function, passed to `send`.
 */
import { randomUUID } from 'node:crypto';
import { auditBase as baseOf, type AuditBase, type AuditPerson, type AuditRecord, type AuditTrail } from '../audit.js';
import { displayName, principalKey, type Caller } from '../auth/caller.js';
import type { DevicePreview } from '../confirmation/render.js';
import type { MachineAction } from '../defender/schemas.js';
import type { Sent } from '../defender/unrestrict.js';
import { ToolError, isToolError, redact } from '../errors.js';
import type { Logger } from '../log.js';
import type { Approval, ApprovalPerson, ApprovalStore, Completion } from './store.js';

export type { Approval, ApprovalPerson, ApprovalStore } from './store.js';

const NOTHING_SENT = 'Nothing was sent to Defender.';
const policyError = (rule: string, message: string, nextStep: string) => new ToolError('policy', message, nextStep, {}, { rule });

export function personOf(caller: Caller): ApprovalPerson {
  const base = { kind: caller.kind, principal: principalKey(caller), name: displayName(caller) };
  if (caller.kind === 'user') return { ...base, oid: caller.oid, tid: caller.tid };
  if (caller.kind === 'app') return { ...base, oid: caller.oid, tid: caller.tid, appId: caller.appId };
  return base;
}

/** The audit's view of a person: ids and name, nothing else. */
function auditPerson(p: ApprovalPerson | undefined): AuditPerson | null {
  if (!p) return null;
  return { kind: p.kind, name: p.name, ...(p.oid ? { oid: p.oid } : {}), ...(p.tid ? { tid: p.tid } : {}), ...(p.appId ? { appId: p.appId } : {}) };
}

/** What the audit records of one approval carry, whichever step writes them. */
export function approvalAuditFields(a: Approval, approver?: ApprovalPerson): Pick<AuditRecord, 'approvalId' | 'requester' | 'approver'> {
  return { approvalId: a.id, requester: auditPerson(a.requestedBy), approver: auditPerson(approver ?? a.decidedBy) };
}

/**
 * The comment recorded in Defender: `<comment> (requested by <requester>, approved by <approver>)`. The
 * names always fit: the requester's comment is shortened (with an ellipsis) so the whole stays within
 * `max`, the comment length every write of this server keeps to.
 */
export function combinedComment(comment: string, requester: string, approver: string, max: number): string {
  const suffix = ` (requested by ${requester}, approved by ${approver})`;
  const room = max - suffix.length;
  if (room < 1) return `${comment.slice(0, Math.max(0, max - 1))}…`.slice(0, max); // absurdly long names: keep the comment's start
  // Cut on a character boundary: half a surrogate pair would reach Defender as an invalid character.
  const body = comment.length <= room ? comment : `${comment.slice(0, room - 1).replace(/[\uD800-\uDBFF]$/, '').trimEnd()}…`;
  return `${body}${suffix}`;
}

/** MDE_APPROVAL=two-person: a second analyst approves before a restriction is lifted. */
export interface ApprovalSettings {
  /** Devices in these groups or carrying these tags need an approval; both empty: every device. */
  deviceGroups: string[];
  tags: string[];
  ttlMs: number;
  /** The app role an approver's token must carry. */
  approverRole: string;
}

export interface ApprovalsDeps {
  store: ApprovalStore;
  settings: ApprovalSettings;
  audit: AuditTrail;
  now?: () => number;
}

/** One instance per process, shared by every session. */
export class Approvals {
  readonly store: ApprovalStore;
  readonly settings: ApprovalSettings;
  private readonly audit: AuditTrail;
  private readonly now: () => number;

  constructor(deps: ApprovalsDeps) {
    this.store = deps.store;
    this.settings = deps.settings;
    this.audit = deps.audit;
    this.now = deps.now ?? Date.now;
  }

  /**
   * Does this device need a second person? Every device, unless groups or tags narrow it; a device whose
   * details could not be read needs one (fail closed).
   */
  required(device: DevicePreview | undefined): boolean {
    const { deviceGroups, tags } = this.settings;
    if (deviceGroups.length === 0 && tags.length === 0) return true;
    if (!device || device.note) return true;
    const lower = (xs: readonly string[]) => xs.map((x) => x.toLowerCase());
    return lower(deviceGroups).includes((device.deviceGroup ?? '').toLowerCase()) || device.tags.some((t) => lower(tags).includes(t.toLowerCase()));
  }

  /**
   * Record a request (audit first, flushed: if it cannot be written, nothing is stored). The same person
   * asking again for the same device and comment while their request is pending gets that request back.
   */
  async request(r: { tool: string; caller: Caller; machineId: string; comment: string; preview: DevicePreview; record: AuditBase; confirmation: string }): Promise<Approval> {
    const nowMs = this.now();
    const principal = principalKey(r.caller);
    const same = (await this.store.pending()).find(
      (a) => a.requestedBy.principal === principal && a.machineId === r.machineId && a.comment === r.comment && nowMs < Date.parse(a.expiresAt),
    );
    if (same) return same;
    const approval: Approval = {
      id: randomUUID(),
      status: 'pending',
      action: 'unrestrict',
      tool: r.tool,
      machineId: r.machineId,
      comment: r.comment,
      preview: r.preview,
      requestedBy: personOf(r.caller),
      requestedAt: new Date(nowMs).toISOString(),
      expiresAt: new Date(nowMs + this.settings.ttlMs).toISOString(),
    };
    await this.audit.write({ ...r.record, event: 'approval_requested', confirmation: r.confirmation, ...approvalAuditFields(approval), approvalExpiresAt: approval.expiresAt });
    await this.store.create(approval);
    return approval;
  }

  /** An approval as it stands now; one found past its expiry is expired here (and audited, once). */
  async get(id: string, ctx: AuditContext): Promise<Approval> {
    const approval = await this.store.get(id);
    if (!approval) {
      throw new ToolError(
        'not_found',
        `There is no approval ${id} (approvals are kept for a week after they expire).`,
        'Check the id: list_pending_approvals lists what awaits a decision, and the requester\'s result named the approval id.',
      );
    }
    return this.expireIfDue(approval, ctx);
  }

  /**
   * Who may see an approval (its device, its comment): the requester, whoever decided it, and analysts
   * holding the approver role. Others could otherwise read devices and comments from device groups
   * Defender would not show them.
   */
  mayView(approval: Approval, caller: Caller | undefined): boolean {
    if (!caller || caller.kind === 'anonymous') return false;
    const principal = principalKey(caller);
    if (principal === approval.requestedBy.principal || principal === approval.decidedBy?.principal) return true;
    return caller.kind === 'user' && (caller.roles ?? []).includes(this.settings.approverRole);
  }

  /** get_approval: an approval, only for those who may see it. */
  async view(id: string, ctx: AuditContext): Promise<Approval> {
    const approval = await this.store.get(id);
    if (approval && !this.mayView(approval, ctx.caller)) {
      throw policyError(
        'approver-role',
        `Refused: approval ${id} is shown only to its requester and to analysts holding the app role ${this.settings.approverRole} (MDE_APPROVER_ROLE).`,
        'Ask the requester or an approver, or an administrator for the approver role.',
      );
    }
    return this.get(id, ctx);
  }

  /** The pending approvals this caller may see (approvers: all; others: their own), oldest first. */
  async listPending(ctx: AuditContext): Promise<Approval[]> {
    const out: Approval[] = [];
    for (const a of await this.store.pending()) {
      if (!this.mayView(a, ctx.caller)) continue;
      const now = await this.expireIfDue(a, ctx);
      if (now.status === 'pending') out.push(now);
    }
    return out.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  private async expireIfDue(approval: Approval, ctx: AuditContext): Promise<Approval> {
    if (approval.status !== 'pending' || this.now() < Date.parse(approval.expiresAt)) return approval;
    const at = new Date(this.now()).toISOString();
    const result = await this.store.decide(approval.id, { status: 'expired', at }, this.now());
    if (!result) return approval;
    if (result.won) await this.audit.write({ ...auditBase(result.approval, ctx), event: 'approval_expired', confirmation: 'none', ...approvalAuditFields(result.approval) });
    return result.approval;
  }

  /**
   * May this caller decide this approval? Offline checks, before any prompt: it must be pending and
   * unexpired; approving needs another user holding the approver role; rejecting, that or the requester
   * withdrawing their own request.
   */
  checkDecider(approval: Approval, caller: Caller | undefined, decision: 'approve' | 'reject'): ApprovalPerson {
    if (!caller || caller.kind !== 'user') {
      throw policyError(
        'approver-role',
        `Refused: only a signed-in analyst can ${decision} a request; ${caller?.kind === 'app' ? `the app ${caller.appId}` : 'this caller'} is not one. ${NOTHING_SENT}`,
        'Ask an analyst who holds the approver role to decide it (list_pending_approvals shows it to them).',
      );
    }
    // Someone who may not see it learns nothing of its state (who decided it, when) from a refusal.
    if (!this.mayView(approval, caller)) throw this.roleMissing(decision);
    if (approval.status !== 'pending') throw this.alreadyDecided(approval);
    if (this.now() >= Date.parse(approval.expiresAt)) throw this.expired(approval);
    const me = personOf(caller);
    const mine = me.principal === approval.requestedBy.principal;
    if (decision === 'reject' && mine) return me; // withdrawing one's own request
    if (mine) {
      throw policyError(
        'two-person',
        `Refused by the two-person rule (MDE_APPROVAL=two-person): you requested approval ${approval.id} yourself, and a request must be approved by someone else. ${NOTHING_SENT}`,
        'Ask another analyst who holds the approver role to approve it; you may withdraw it with reject_action.',
      );
    }
    if (!(caller.roles ?? []).includes(this.settings.approverRole)) throw this.roleMissing(decision);
    return me;
  }

  private roleMissing(decision: 'approve' | 'reject'): ToolError {
    return policyError(
      'approver-role',
      `Refused: ${decision === 'approve' ? 'approving' : 'rejecting'} needs the app role ${this.settings.approverRole} (MDE_APPROVER_ROLE), and your sign-in does not carry it. ${NOTHING_SENT}`,
      `An administrator assigns the ${this.settings.approverRole} app role to you (Entra ID > Enterprise applications > this API > Users and groups); sign in again afterwards so your token carries it. Otherwise ask someone who holds it.`,
    );
  }

  /** Approve, once: the losing one of two concurrent approvers learns who decided first. */
  async grant(approval: Approval, approver: ApprovalPerson, record: AuditBase, confirmation: string): Promise<Approval> {
    const result = await this.store.decide(approval.id, { status: 'approved', by: approver, at: new Date(this.now()).toISOString() }, this.now());
    if (!result) throw new Error(`approval ${approval.id} vanished`);
    if (!result.won) throw result.expired ? this.expired(result.approval) : this.alreadyDecided(result.approval);
    try {
      await this.audit.write({ ...record, event: 'approval_granted', confirmation, ...approvalAuditFields(result.approval) });
    } catch (error) {
      // Approved but not recorded: never send it; say so in the approval too.
      await this.store.complete(approval.id, { status: 'failed', reason: 'the audit log could not be written, so the approved action was not sent', sentComment: '' });
      throw error;
    }
    return result.approval;
  }

  private async reject(approval: Approval, by: ApprovalPerson, reason: string, record: AuditBase): Promise<Approval> {
    const result = await this.store.decide(approval.id, { status: 'rejected', by, at: new Date(this.now()).toISOString(), reason }, this.now());
    if (!result) throw new Error(`approval ${approval.id} vanished`);
    if (!result.won) throw result.expired ? this.expired(result.approval) : this.alreadyDecided(result.approval);
    // The rejection stands even if its record cannot be written (nothing was or will be sent).
    await this.audit.write({ ...record, event: 'approval_rejected', confirmation: 'none', reason, ...approvalAuditFields(result.approval) }).catch(() => undefined);
    return result.approval;
  }

  /** A refused decision leaves a not_sent record naming the rule, like every refused write. */
  private async auditRefusal(record: AuditBase, fields: Partial<AuditRecord>, error: unknown): Promise<void> {
    const reason = error instanceof ToolError ? (error.details.rule ?? error.kind) : 'error';
    await this.audit.write({ ...record, ...fields, event: 'not_sent', confirmation: 'none', reason }).catch(() => undefined);
  }

  /**
   * Approved but never sent (the intent record could not be written, say): the approval must say failed,
   * not approved, or the requester would think it went out and nobody could approve it again.
   */
  async markUnsent(approval: Approval, error: unknown): Promise<void> {
    await this.store.complete(approval.id, { status: 'failed', reason: failure(`approved, but not sent: ${describeError(error)}`), sentComment: '' }).catch(() => undefined);
  }

  /**
   * Send an approved action (`submit` talks to Defender) and record what it came to. Recording it in the
   * store (Redis may be down) must not change what the approver is told: the error that stopped the send,
   * or that the action was sent, with `unrecorded` saying the approval could not be updated.
   */
  async send(approval: Approval, comment: string, submit: (comment: string) => Promise<Sent>, logger: Logger): Promise<{ sent: Sent; approval: Approval; unrecorded?: string }> {
    let unrecorded: string | undefined;
    const record = (completion: Completion) =>
      this.store.complete(approval.id, completion).catch((error: unknown) => {
        unrecorded = error instanceof Error ? error.message : String(error);
        logger.error(`approve_action: approval ${approval.id} could not be updated with what sending came to: ${unrecorded}`);
      });
    let sent: Sent;
    try {
      sent = await submit(comment);
    } catch (error) {
      await record({ status: 'failed', reason: failure(describeError(error)), sentComment: comment });
      throw error;
    }
    const action: { machineAction?: MachineAction } = sent.action ? { machineAction: sent.action } : {};
    await record({ status: 'approved', outcome: sent.outcome, ...action, sentComment: comment });
    return { sent, approval: { ...approval, outcome: sent.outcome, ...action, sentComment: comment }, ...(unrecorded ? { unrecorded } : {}) };
  }

  /**
   * Cancelling a pending RestrictCodeExecution leaves the device's apps unrestricted, the same outcome as
   * lifting the restriction, which one analyst alone may not bring about (in the rule's scope as usual).
   */
  cancelNeedsDevice(target: MachineAction | undefined): boolean {
    return target?.type === 'RestrictCodeExecution' && this.settings.deviceGroups.length + this.settings.tags.length > 0;
  }

  checkCancel(target: MachineAction | undefined, device: DevicePreview | undefined): void {
    if (target?.type !== 'RestrictCodeExecution' || !this.required(device)) return;
    throw policyError(
      'two-person',
      `Refused by the two-person rule (MDE_APPROVAL=two-person): cancelling the ${target.status} RestrictCodeExecution action ${target.id} would leave the device's apps unrestricted, as lifting the restriction would, and that needs a second analyst's approval. ${NOTHING_SENT}`,
      'Let the restriction apply, then ask for it to be lifted with remove_app_restriction (another analyst approves it with approve_action).',
    );
  }

  /**
   * reject_action, the whole of it: may this caller decide it, then reject it once. A refusal (no right,
   * or decided by someone else meanwhile) leaves a not_sent record naming the rule, like every refused write.
   */
  async rejectRequest(approval: Approval, reason: string, ctx: AuditContext): Promise<Approval> {
    const record = auditBase(approval, ctx);
    try {
      const by = this.checkDecider(approval, ctx.caller, 'reject');
      return await this.reject(approval, by, reason, record);
    } catch (error) {
      await this.auditRefusal(record, approvalAuditFields(approval), error);
      throw error;
    }
  }

  private alreadyDecided(a: Approval): ToolError {
    if (a.status === 'expired') return this.expired(a);
    const who = a.decidedBy ? ` by ${a.decidedBy.name}` : '';
    const when = a.decidedAt ? ` at ${a.decidedAt}` : '';
    const status = a.status === 'failed' ? 'approved' : a.status;
    const failed = a.status === 'failed' ? ` (but sending it failed: ${a.reason ?? 'unknown reason'})` : '';
    return policyError(
      'decided_once',
      `Not performed: approval ${a.id} was already ${status}${who}${when}${failed}; a request is decided exactly once. ${a.status === 'approved' ? 'This call sent nothing more.' : NOTHING_SENT}`,
      `Follow it with get_approval (approvalId "${a.id}").`,
    );
  }

  private expired(a: Approval): ToolError {
    return policyError(
      'approval_expired',
      `Not performed: approval ${a.id} expired at ${a.expiresAt} (MDE_APPROVAL_TTL_MINUTES) and can no longer be approved. ${NOTHING_SENT}`,
      'The requester must call remove_app_restriction again to ask for a new approval.',
    );
  }
}

export interface AuditContext {
  tool: string;
  caller: Caller | undefined;
  client: { name: string; version: string } | undefined;
}

/** The base of the records an approval step writes outside the write guard (expiry, rejection). */
export function auditBase(a: Approval, ctx: AuditContext): AuditBase {
  return baseOf({ tool: ctx.tool, action: a.action, machineId: a.machineId, hostName: a.preview.hostName, comment: a.comment }, ctx);
}

function describeError(error: unknown): string {
  return isToolError(error) ? `${error.kind}: ${error.message}` : error instanceof Error ? error.message : String(error);
}

/** A failure reason as an approval keeps it: no token-looking text, bounded. */
function failure(reason: string): string {
  return redact(reason, []).slice(0, 500);
}
