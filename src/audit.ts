/**
 * The audit trail: an append-only JSON Lines file (mode 0600). For every write a tool attempts, an
 * `intent` record is written and flushed to disk before the request goes out, and an `outcome` record
 * after; a call that ends without a request (declined, token issued or rejected, refused by policy)
 * leaves a `not_sent` record. Records share a request id. If the file cannot be written, the action is
 * refused. Secrets and tokens never enter a record: the confirmation is identified by a fingerprint.
 */
import { displayValue, type Caller } from './auth/caller.js';
import { randomUUID } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { ToolError, StartupError, redact } from './errors.js';

export type AuditEvent = 'intent' | 'outcome' | 'not_sent' | 'approval_requested' | 'approval_granted' | 'approval_rejected' | 'approval_expired';

/** A person in an approval (two-person rule), as the audit names them. */
export interface AuditPerson {
  kind: 'user' | 'app' | 'anonymous';
  name: string;
  oid?: string;
  tid?: string;
  appId?: string;
}

export interface AuditRecord {
  time: string;
  requestId: string;
  event: AuditEvent;
  tool: string;
  action: string;
  client: { name: string; version: string } | null;
  /** Remote mode: the signed-in analyst the action was taken for (Entra claims). */
  user?: { oid: string; tid: string; preferred_username: string | null; name: string | null };
  /** Remote mode: the application that called with its own identity (MDE_APP_CALLER_ROLE). */
  app?: { appId: string; oid: string; tid: string };
  /** null when the call was refused before the device was known (cancel, before reading its action). */
  machineId: string | null;
  hostName: string | null;
  comment: string;
  /** How the human's confirmation went: elicitation_accepted, token_redeemed, skipped_by_flag, ... */
  confirmation: string;
  /** Ties a token_issued record to its token_redeemed one; not the token. */
  confirmationId?: string;
  tokenRejection?: string;
  /** Why nothing was sent (not_sent), or the policy rule that refused. */
  reason?: string;
  /** The MachineAction an action targets (cancel). */
  targetActionId?: string;
  /** Two-person rule: the approval this record belongs to, who requested it and who decided it (null until then). */
  approvalId?: string;
  requester?: AuditPerson | null;
  approver?: AuditPerson | null;
  approvalExpiresAt?: string;
  httpStatus?: number;
  outcome?: string;
  machineActionId?: string;
  machineActionStatus?: string;
  errorKind?: string;
  errorCode?: string;
}

export interface AuditTrail {
  readonly enabled: boolean;
  /** Append and flush one record; throws an audit_unavailable ToolError when it cannot. */
  write(record: Omit<AuditRecord, 'time'>): Promise<void>;
}

export const NO_AUDIT: AuditTrail = { enabled: false, write: async () => undefined };

/** Which replica wrote a record: several may run for one app registration, each with its own file. */
export const REPLICA = { host: hostname(), pid: process.pid };

export class JsonlAuditTrail implements AuditTrail {
  readonly enabled = true;
  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
    private readonly replica: { host: string; pid: number } = REPLICA,
    /** Configured secrets: whatever carries one (a client's name, a caller's claim) is written [REDACTED]. */
    secrets: readonly string[] = [],
  ) {
    // As they stand in a JSON line too (a quote or a backslash in a secret is escaped there).
    this.secrets = [...new Set(secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  }
  private readonly secrets: readonly string[];

  /**
   * Create the file if needed (0600) and prove it is writable, at start-up, so a wrong path stops the
   * server instead of refusing every action later. Returns a warning, if any.
   */
  async prepare(): Promise<string | undefined> {
    try {
      const fh = await open(this.path, 'a', 0o600);
      await fh.close();
      const mode = (await stat(this.path)).mode & 0o777;
      if (mode & 0o077) {
        return `The audit log ${this.path} is readable by others (mode ${mode.toString(8)}); consider chmod 600.`;
      }
      return undefined;
    } catch (error) {
      throw new StartupError([
        `The audit log ${this.path} cannot be written (${reasonOf(error)}).` +
          ' ' +
          'Fix MDE_AUDIT_LOG (--audit-log): the path, its folder, permissions, free disk space; or unset it.',
      ]);
    }
  }

  async write(record: Omit<AuditRecord, 'time'>): Promise<void> {
    const { requestId, event, ...rest } = record;
    // Secrets, bearer tokens and JWTs never enter a record, whichever field brought them.
    const line = `${redact(JSON.stringify({ time: new Date(this.now()).toISOString(), requestId, event, ...rest, replica: this.replica }), this.secrets)}\n`;
    try {
      // One append per record (atomic with O_APPEND), flushed before the caller goes on.
      const fh = await open(this.path, 'a', 0o600);
      try {
        await fh.appendFile(line, 'utf8');
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private unavailable(error: unknown): ToolError {
    return new ToolError(
      'audit_unavailable',
      `The audit log ${this.path} cannot be written (${reasonOf(error)}), so the action was refused: nothing was sent to Defender.`,
      'Ask the operator to fix MDE_AUDIT_LOG (the path, its folder, permissions, free disk space), then call again.',
    );
  }
}

function reasonOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
}

/** The audit fields naming who called in remote mode; none over stdio or without sign-in. */
export function auditCaller(caller: Caller | undefined): Pick<AuditRecord, 'user' | 'app'> {
  if (caller?.kind === 'user') return { user: { oid: caller.oid, tid: caller.tid, preferred_username: caller.preferredUsername ?? null, name: caller.name ?? null } };
  if (caller?.kind === 'app') return { app: { appId: caller.appId, oid: caller.oid, tid: caller.tid } };
  return {};
}

/** The fields every audit record of one call shares: all but its time, event and confirmation. */
export type AuditBase = Omit<AuditRecord, 'time' | 'event' | 'confirmation'>;

/** What a call is about, as its audit records name it. */
export interface AuditSubject {
  tool: string;
  action: string;
  machineId: string | null;
  hostName: string | null;
  comment: string;
  targetActionId?: string;
}

/**
 * The base of every record of one call, whoever writes it (the write guard, the two-person rule): a new
 * request id, the client (declared by it, so bounded and stripped of control characters like any
 * caller-chosen text), the signed-in caller, and the subject.
 */
export function auditBase(subject: AuditSubject, who: { caller?: Caller | undefined; client?: { name: string; version: string } | undefined }): AuditBase {
  const { targetActionId, ...rest } = subject;
  return {
    requestId: randomUUID(),
    tool: rest.tool,
    action: rest.action,
    client: who.client ? { name: displayValue(who.client.name) ?? '', version: displayValue(who.client.version) ?? '' } : null,
    ...auditCaller(who.caller),
    machineId: rest.machineId,
    hostName: rest.hostName,
    comment: rest.comment,
    ...(targetActionId ? { targetActionId } : {}),
  };
}
