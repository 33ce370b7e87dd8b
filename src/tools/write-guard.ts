/**
 * The path every write tool takes, in this order, so no tool can skip a step:
 *   may this caller decide (approve_action) -> comment policy -> how to confirm -> the request (may read
 *   Defender) -> a look at Defender (may settle the call) -> device preview, the two-person rule's cancel
 *   check and device policy -> confirmation -> the two-person rule (a request waits for a second analyst;
 *   an approval is decided) -> audit intent (flushed; refuse if it cannot be written) -> the write ->
 *   audit outcome.
 * How to confirm is decided first, offline (a bad token touches nothing upstream), but a token is spent
 * only after the device passed the policy. Each refusal leaves a `not_sent` audit record and sends
 * nothing to Defender.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { approvalAuditFields, personOf, type Approvals } from '../approval/approvals.js';
import type { Approval } from '../approval/store.js';
import { auditBase, type AuditBase, type AuditRecord, type AuditTrail } from '../audit.js';
import { principalKey } from '../auth/caller.js';
import { ask, decide, redeem, CONFIRMED_BY, type ConfirmationDeps, type Confirmed, type ConfirmedBy, type Refusal } from '../confirmation/confirm.js';
import { confirmationRequiredText, type ActionRequest, type DevicePreview } from '../confirmation/render.js';
import type { DefenderApi } from '../defender/client.js';
import { ToolError, isToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { checkComment, checkDevice, hasDevicePolicy, type DeviceFacts, type Policy } from '../policy.js';
import { approvalPendingResult } from './approval-view.js';
import type { RequestContext } from './define.js';
import { toPreview } from './shared.js';

export interface WriteGuardDeps {
  api: DefenderApi;
  confirmation: ConfirmationDeps;
  audit: AuditTrail;
  policy: Policy;
  logger: Logger;
  metrics?: Metrics;
  /** The two-person rule (MDE_APPROVAL=two-person); undefined when off. */
  approvals?: Approvals;
  /** Configured secrets: a comment that carries one is refused before anything is read or sent. */
  secrets?: readonly string[];
}

export interface OutcomeFields {
  httpStatus?: number;
  outcome: string;
  machineActionId?: string;
  machineActionStatus?: string;
}

/** What a look at Defender before the prompt found (remove_app_restriction: the action history). */
export interface Inspection {
  /** The call is settled without a prompt or a write (an action is already pending): this is its result. */
  settled?: { result: CallToolResult; audit: OutcomeFields };
  /** What the history shows, for the preview. */
  history?: string;
}

export interface WriteSpec {
  tool: string;
  /**
   * What is known before anything is read: checked offline first (comment policy, how to confirm, the
   * token), so a refused call reads nothing. `machineId` is undefined when only a read can tell (cancel).
   */
  subject: { action: string; comment: string; machineId?: string; targetActionId?: string };
  /** The full request the human is shown; may read Defender (cancel reads its action). Runs only after the offline checks. */
  describe: (signal: AbortSignal | undefined) => Promise<ActionRequest>;
  /** One look at Defender before anything is shown; may settle the call at once. */
  inspect?: (machineId: string, signal: AbortSignal | undefined) => Promise<Inspection | undefined>;
  confirmationToken: string | undefined;
  /** How the agent repeats the call with the token, e.g. "machineId and comment". */
  sameArguments: string;
  /**
   * The write itself (the signal ends it when the client cancels); returns the tool result and what the
   * outcome record should say. `granted`: the approval as this call decided it (approve_action).
   */
  execute: (confirmedBy: ConfirmedBy, signal: AbortSignal | undefined, granted: Approval | undefined) => Promise<{ result: CallToolResult; audit: OutcomeFields }>;
  /** The result for a client without elicitation: nothing sent, here is what to approve (text rendered). */
  confirmationRequired: (c: { token: string; expiresAt: string; preview: DevicePreview; text: string; request: ActionRequest }) => CallToolResult;
  /** Where this call stands to the two-person rule; nothing when the rule is off (or the write is outside it). */
  approval?: ApprovalStep;
}

/**
 * The two-person rule's part in one write:
 * - `request`: the confirmed request of a device in the rule's scope waits for a second analyst
 *   (approval_pending, nothing sent);
 * - `grant`: a second analyst approves `approval` (its comment passed the comment policy when requested);
 * - `cancel`: cancelling a pending restriction needs a second analyst as lifting it does, so it is refused.
 */
export type ApprovalStep = { kind: 'request' } | { kind: 'grant'; approval: Approval } | { kind: 'cancel' };

export type WriteGuard = (spec: WriteSpec, ctx: RequestContext) => Promise<CallToolResult>;

/**
 * A comment goes to Defender, the audit trail and the result: one that carries a configured secret, a
 * bearer token or a JWT is refused, without repeating it.
 */
function refuseSecrets(comment: string, secrets: readonly string[]): void {
  const carries =
    secrets.some((s) => s.length >= 4 && comment.includes(s)) ||
    /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./.test(comment) ||
    // A bearer token, not the word: "Bearer of the INC-7 ticket" passes.
    /Bearer\s+[A-Za-z0-9\-._~+/]{20,}/i.test(comment);
  if (!carries) return;
  throw new ToolError(
    'invalid_input',
    'Refused: the comment carries a configured secret, a bearer token or a JWT, which must never reach Defender, the audit trail or a result. Nothing was sent to Defender.',
    'Retype the comment without it (and treat that secret as exposed: rotate it).',
    {},
    { rule: 'secret_in_comment' },
  );
}

/** The call was cancelled by the client (or it timed out): nothing more may be sent. */
export function cancelledError(): ToolError {
  return new ToolError(
    'not_confirmed',
    'Not performed: the client cancelled the call before the request was sent. Nothing was sent to Defender.',
    'Call again if the action is still wanted.',
  );
}

export function createWriteGuard(deps: WriteGuardDeps): WriteGuard {
  const metrics = deps.metrics ?? NO_METRICS;
  /** The device as the human will recognise it. A 403 falls back to the id: it must not block the action. */
  async function readDevice(machineId: string, signal: AbortSignal | undefined): Promise<{ preview: DevicePreview; facts: DeviceFacts | undefined }> {
    try {
      const machine = await deps.api.getMachine(machineId, signal);
      const preview = toPreview(machineId, machine);
      return { preview, facts: { hostName: preview.hostName, deviceGroup: machine.rbacGroupName ?? null, tags: machine.machineTags ?? null } };
    } catch (error) {
      if (!isToolError(error, 'permission')) throw error; // 404 ends the call here: there is nothing to confirm.
      deps.logger.warning('Device preview unavailable (HTTP 403 on GET /api/machines): the app may lack Machine.Read.All.');
      return {
        preview: {
          ...toPreview(machineId, { id: machineId }),
          note: 'Device details are unavailable: the app lacks the Machine.Read.All permission. Check the id in the Defender portal.',
        },
        facts: undefined,
      };
    }
  }

  return async function run(spec, ctx) {
    const { subject } = spec;
    const signal = ctx.signal;
    const step = spec.approval;
    const approvals = step ? deps.approvals : undefined;
    if (step && !approvals) throw new Error(`${spec.tool}: a two-person step without the two-person rule`);
    // Remote mode: a confirmation token is bound to the caller who asked for it.
    const principal = ctx.caller ? { principal: principalKey(ctx.caller) } : {};
    const granting = step?.kind === 'grant' ? step.approval : undefined;
    const approver = granting && ctx.caller ? personOf(ctx.caller) : undefined;
    const record: AuditBase = {
      ...auditBase({ tool: spec.tool, action: subject.action, machineId: subject.machineId ?? null, hostName: null, comment: subject.comment, ...(subject.targetActionId ? { targetActionId: subject.targetActionId } : {}) }, ctx),
      ...(granting ? approvalAuditFields(granting, approver) : {}),
    };
    const notSent = async (confirmation: string, reason: string, extra: Partial<AuditRecord> = {}) => {
      await deps.audit.write({ ...record, event: 'not_sent', confirmation, reason, ...extra }).catch((auditError: Error) => {
        deps.logger.error(`Audit record (not_sent) could not be written: ${auditError.message}`);
      });
    };
    let recorded = false;
    const refuse = async (refusal: Refusal): Promise<never> => {
      recorded = true;
      metrics.confirmation(refusal.path);
      await notSent(refusal.path, refusal.error.kind, refusal.rejection ? { tokenRejection: refusal.rejection } : {});
      throw refusal.error;
    };
    const stillWanted = () => {
      // Nobody is waiting for the answer any more (the client cancelled or timed out): send nothing.
      if (signal?.aborted) throw cancelledError();
    };

    let confirmed: Confirmed | undefined;
    let request: ActionRequest | undefined;
    let granted: Approval | undefined;
    try {
      // Offline first: a caller who may not decide, a refused comment, a client that cannot confirm, a bad token read nothing.
      if (granting) approvals!.checkDecider(granting, ctx.caller, 'approve');
      else checkComment(deps.policy, subject.comment); // an approval's comment passed it when it was requested
      refuseSecrets(subject.comment, deps.secrets ?? []);
      let decision = await decide(deps.confirmation, { action: subject.action, machineId: subject.machineId, comment: subject.comment, ...principal }, spec.confirmationToken);
      if (decision.kind === 'refuse') return await refuse(decision);
      stillWanted();

      request = { ...(await spec.describe(signal)), ...principal };
      record.machineId = request.machineId;
      if (decision.kind === 'redeem_token' && subject.machineId === undefined) {
        // The token was checked without the device; now that it is known, check the binding again.
        decision = await decide(deps.confirmation, request, spec.confirmationToken);
        if (decision.kind === 'refuse') return await refuse(decision);
      }

      const seen = spec.inspect ? await spec.inspect(request.machineId, signal) : undefined;
      if (seen?.settled) {
        // Nothing to ask: Defender already holds the action. No prompt, no write.
        recorded = true;
        const { outcome, ...fields } = seen.settled.audit;
        await notSent('none', outcome, fields);
        return seen.settled.result;
      }

      // The device is read once, for whichever step needs it: the prompt, a device rule, the two-person rule.
      const twoPersonNeedsDevice = step?.kind === 'request' || (step?.kind === 'cancel' && approvals!.cancelNeedsDevice(request.target));
      let preview: DevicePreview | undefined;
      let facts: DeviceFacts | undefined;
      if (decision.kind === 'ask' || decision.kind === 'issue_token' || hasDevicePolicy(deps.policy) || twoPersonNeedsDevice) {
        const device = await readDevice(request.machineId, signal);
        preview = { ...device.preview, ...(seen?.history ? { history: seen.history } : {}) };
        facts = device.facts;
        record.hostName = preview.hostName;
      }
      if (step?.kind === 'cancel') approvals!.checkCancel(request.target, twoPersonNeedsDevice ? preview : undefined);
      if (preview) checkDevice(deps.policy, request.machineId, facts);

      let answer: Confirmed | Refusal;
      switch (decision.kind) {
        case 'skip':
          answer = { kind: 'confirmed', path: 'skipped_by_flag' };
          break;
        case 'ask':
          answer = await ask(deps.confirmation, request, preview ?? toPreview(request.machineId, {}), ctx);
          break;
        case 'redeem_token':
          answer = await redeem(deps.confirmation, decision.token);
          break;
        case 'issue_token': {
          const shown = preview ?? toPreview(request.machineId, {});
          const issued = deps.confirmation.tokens.issue(request, shown.hostName ?? undefined);
          const expiresAt = issued.expiresAt.toISOString();
          deps.logger.info(`${spec.tool}: waiting for the human to approve: ${request.verb.toLowerCase()} on ${shown.hostName ?? request.machineId} (token_issued).`);
          metrics.confirmation('token_issued');
          await notSent('token_issued', 'awaiting_human_approval', { confirmationId: issued.confirmationId });
          return spec.confirmationRequired({
            token: issued.token,
            expiresAt,
            preview: shown,
            request,
            text: confirmationRequiredText(request, shown, { tool: spec.tool, sameArguments: spec.sameArguments, token: issued.token, expiresAt }),
          });
        }
      }
      if (answer.kind === 'refuse') return await refuse(answer);
      confirmed = answer;
      metrics.confirmation(confirmed.path);
      record.hostName ??= confirmed.hostName ?? null;
      // One line per confirmation, in the log and in the client; a skipped one is a warning.
      if (confirmed.path === 'skipped_by_flag') deps.logger.warning(`Confirmation skipped by --dangerously-skip-confirmation: ${request.verb.toLowerCase()} on ${request.machineId}.`);
      else deps.logger.info(`${spec.tool}: ${request.verb.toLowerCase()} on ${record.hostName ?? request.machineId}: confirmed (${confirmed.path}).`);
      stillWanted();

      // The two-person rule, once this caller has confirmed and before the audit intent.
      if (step?.kind === 'request' && approvals!.required(preview)) {
        if (!ctx.caller) throw new Error('two-person rule without a signed-in caller');
        const approval = await approvals!.request({
          tool: spec.tool,
          caller: ctx.caller,
          machineId: request.machineId,
          comment: subject.comment,
          preview: preview ?? toPreview(request.machineId, {}),
          record: { ...record, ...(confirmed.confirmationId ? { confirmationId: confirmed.confirmationId } : {}) },
          confirmation: confirmed.path,
        });
        deps.logger.info(`${spec.tool}: approval ${approval.id} requested by ${approval.requestedBy.name} for ${approval.preview.hostName ?? request.machineId}; nothing sent until another analyst approves it.`);
        return approvalPendingResult(approval, approvals!.settings.approverRole, CONFIRMED_BY[confirmed.path]);
      }
      if (granting) granted = await approvals!.grant(granting, approver!, { ...record }, confirmed.path);
    } catch (error) {
      // Refusals were recorded by refuse(); a policy rule, a 404 or a cancelled call is recorded here.
      if (!recorded) await notSent(confirmed?.path ?? 'none', isToolError(error) ? (error.details.rule ?? error.kind) : 'error');
      throw error;
    }

    const intent = { ...record, confirmation: confirmed.path, ...(confirmed.confirmationId ? { confirmationId: confirmed.confirmationId } : {}) };
    // Written and flushed before the request: if it cannot be, the action is refused.
    try {
      await deps.audit.write({ ...intent, event: 'intent' });
    } catch (error) {
      if (granted) await approvals!.markUnsent(granted, error);
      throw error;
    }
    try {
      const { result, audit } = await spec.execute(CONFIRMED_BY[confirmed.path], signal, granted);
      await deps.audit.write({ ...intent, event: 'outcome', ...audit }).catch((error: Error) => {
        deps.logger.error(`Audit outcome record could not be written after the action was sent: ${error.message}`);
        result.content.push({ type: 'text', text: `Warning: the action was sent, but its outcome could not be written to the audit log (${error.message}).` });
      });
      return result;
    } catch (error) {
      const e = isToolError(error) ? error : undefined;
      await deps.audit
        .write({
          ...intent,
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
