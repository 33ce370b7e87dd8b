/**
 * The path every write tool takes, in this order, so no tool can skip a step:
 *   comment policy -> can we confirm at all? -> device preview -> device policy -> confirmation gate
 *   -> audit intent (flushed; refuse if it cannot be written) -> the write -> audit outcome.
 * Each refusal leaves a `not_sent` audit record and sends nothing to Defender.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuditRecord, AuditTrail } from '../audit.js';
import type { Policy } from '../config.js';
import { GateRefusal, type ActionRequest, type ConfirmationGate, type DevicePreview } from '../confirmation/gate.js';
import type { DefenderApi } from '../defender/client.js';
import type { Machine } from '../defender/schemas.js';
import { ToolError, isToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkComment, checkDevice, hasDevicePolicy } from '../policy.js';
import { toPreview } from './shared.js';

export interface WriteGuardDeps {
  api: DefenderApi;
  gate: ConfirmationGate;
  audit: AuditTrail;
  policy: Policy;
  logger: Logger;
  /** The connected MCP client's name and version, for the audit trail. */
  clientInfo: () => { name: string; version: string } | undefined;
}

export interface OutcomeFields {
  httpStatus?: number;
  outcome: string;
  machineActionId?: string;
  machineActionStatus?: string;
}

/** How a write was confirmed, as tools report it in `confirmedBy`. */
export type ConfirmedBy = 'elicitation' | 'token' | 'skipped';
const CONFIRMED_BY: Record<string, ConfirmedBy> = { elicitation_accepted: 'elicitation', token_redeemed: 'token', skipped_by_flag: 'skipped' };

export interface WriteSpec {
  tool: string;
  request: ActionRequest;
  confirmationToken: string | undefined;
  /** For actions on an action (cancel): the MachineAction targeted. */
  targetActionId?: string;
  /** The write itself; returns the tool result and what the outcome record should say. */
  execute: (confirmedBy: ConfirmedBy) => Promise<{ result: CallToolResult; audit: OutcomeFields }>;
  /** Aborted when the client cancels the tool call: nothing is sent after that. */
  signal?: AbortSignal;
  /** The result for a client without elicitation: nothing sent, here is what to approve. */
  confirmationRequired: (c: { token: string; expiresAt: string; preview: DevicePreview }) => CallToolResult;
}

export function createWriteGuard(deps: WriteGuardDeps) {
  /** The device as the human will recognise it. A 403 falls back to the id: it must not block the action. */
  async function readDevice(machineId: string): Promise<{ preview: DevicePreview; available: boolean }> {
    let machine: Machine;
    try {
      machine = await deps.api.getMachine(machineId);
    } catch (error) {
      if (isToolError(error, 'permission')) {
        deps.logger.warning('Device preview unavailable (HTTP 403 on GET /api/machines): the app may lack Machine.Read.All.');
        return {
          preview: {
            ...toPreview(machineId, { id: machineId }),
            note: 'Device details are unavailable: the app lacks the Machine.Read.All permission. Check the id in the Defender portal.',
          },
          available: false,
        };
      }
      throw error; // 404 ends the call here: there is nothing to confirm.
    }
    return { preview: toPreview(machineId, machine), available: true };
  }

  return async function run(spec: WriteSpec): Promise<CallToolResult> {
    const { request } = spec;
    const client = deps.clientInfo();
    const base: Omit<AuditRecord, 'time' | 'event' | 'confirmation'> = {
      requestId: randomUUID(),
      tool: spec.tool,
      action: request.action,
      client: client ? { name: client.name, version: client.version } : null,
      machineId: request.machineId,
      hostName: null,
      comment: request.comment,
      ...(spec.targetActionId ? { targetActionId: spec.targetActionId } : {}),
    };
    let confirmation = 'none';

    const notSent = async (error: unknown, extra: Partial<AuditRecord> = {}) => {
      if (error instanceof GateRefusal) {
        confirmation = error.path;
        if (error.rejection) extra.tokenRejection = error.rejection;
      }
      const reason = error instanceof PolicyError ? error.rule : error instanceof ToolError ? error.kind : 'error';
      try {
        await deps.audit.write({ ...base, event: 'not_sent', confirmation, reason, ...extra });
      } catch (auditError) {
        deps.logger.error(`Audit record (not_sent) could not be written: ${(auditError as Error).message}`);
      }
    };

    let confirmationId: string | undefined;
    try {
      checkComment(deps.policy, request.comment);
      const plan = deps.gate.plan(spec.confirmationToken);
      if (plan === 'redeem_token') {
        // Checked offline, before anything else: a bad token touches nothing upstream.
        const decision = deps.gate.redeem(request, spec.confirmationToken ?? '');
        confirmation = 'token_redeemed';
        if (decision.kind === 'confirmed') {
          confirmationId = decision.confirmationId;
          base.hostName = decision.hostName ?? null;
        }
      }
      let preview: DevicePreview | undefined;
      if (plan === 'elicit' || plan === 'issue_token' || hasDevicePolicy(deps.policy)) {
        const device = await readDevice(request.machineId);
        preview = device.preview;
        base.hostName = preview.hostName;
        checkDevice(deps.policy, request.machineId, device.available ? preview : undefined);
      }
      if (plan === 'skip') {
        confirmation = 'skipped_by_flag';
        deps.logger.warning(`Confirmation skipped by --dangerously-skip-confirmation: ${request.verb.toLowerCase()} on ${request.machineId}.`);
      } else if (plan === 'elicit') {
        await deps.gate.elicit(request, preview!, spec.signal);
        confirmation = 'elicitation_accepted';
      } else if (plan === 'issue_token') {
        const decision = deps.gate.issue(request, preview!);
        if (decision.kind !== 'token_issued') throw new Error('unreachable: issue() returns a token');
        confirmation = 'token_issued';
        deps.logger.info(`${spec.tool}: waiting for the human to approve: ${request.verb.toLowerCase()} on ${preview?.hostName ?? request.machineId} (confirmation token issued).`);
        await notSent(undefined, { confirmationId: decision.confirmationId, reason: 'awaiting_human_approval' });
        return spec.confirmationRequired({ token: decision.token, expiresAt: decision.expiresAt.toISOString(), preview: preview! });
      }
      if (spec.signal?.aborted) {
        // Nobody is waiting for the answer any more (the client cancelled or timed out): send nothing.
        throw new ToolError('not_confirmed', 
          'Not performed: the client cancelled the call before the request was sent. Nothing was sent to Defender.',
          'Call again if the action is still wanted.',
        );
      }
    } catch (error) {
      await notSent(error);
      throw error;
    }

    deps.logger.info(`${spec.tool}: ${request.verb.toLowerCase()} on ${base.hostName ?? request.machineId}: confirmed (${confirmation}).`);
    const confirmed = { ...base, confirmation, ...(confirmationId ? { confirmationId } : {}) };
    // Written and flushed before the request: if it cannot be, the action is refused.
    await deps.audit.write({ ...confirmed, event: 'intent' });
    try {
      const { result, audit } = await spec.execute(CONFIRMED_BY[confirmation]!);
      await deps.audit.write({ ...confirmed, event: 'outcome', ...audit }).catch((error: Error) => {
        deps.logger.error(`Audit outcome record could not be written after the action was sent: ${error.message}`);
        result.content.push({ type: 'text', text: `Warning: the action was sent, but its outcome could not be written to the audit log (${error.message}).` });
      });
      return result;
    } catch (error) {
      const e = error instanceof ToolError ? error : undefined;
      await deps.audit
        .write({
          ...confirmed,
          event: 'outcome',
          outcome: 'error',
          errorKind: e?.kind ?? 'internal',
          ...(e?.upstream.status !== undefined ? { httpStatus: e.upstream.status } : {}),
          ...(e?.upstream.code ? { errorCode: e.upstream.code } : {}),
        })
        .catch((auditError: Error) => deps.logger.error(`Audit outcome record could not be written: ${auditError.message}`));
      throw error;
    }
  };
}
