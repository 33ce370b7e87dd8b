/**
 * The path every write tool takes, in this order, so no tool can skip a step:
 *   comment policy -> device preview and device policy -> confirmation -> audit intent (flushed; refuse
 *   if it cannot be written) -> the write -> audit outcome.
 * How to confirm is decided first, offline (a bad token touches nothing upstream), but a token is spent
 * only after the device passed the policy. Each refusal leaves a `not_sent` audit record and sends
 * nothing to Defender.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { auditCaller, type AuditRecord, type AuditTrail } from '../audit.js';
import { displayValue, principalKey } from '../auth/caller.js';
import type { Policy } from '../config.js';
import { ask, decide, redeem, CONFIRMED_BY, type ConfirmationDeps, type Confirmed, type ConfirmedBy, type Refusal } from '../confirmation/confirm.js';
import { confirmationRequiredText, type ActionRequest, type DevicePreview } from '../confirmation/render.js';
import type { DefenderApi } from '../defender/client.js';
import { ToolError, isToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { checkComment, checkDevice, hasDevicePolicy, type DeviceFacts } from '../policy.js';
import type { RequestContext } from './define.js';
import { toPreview } from './shared.js';

export interface WriteGuardDeps {
  api: DefenderApi;
  confirmation: ConfirmationDeps;
  audit: AuditTrail;
  policy: Policy;
  logger: Logger;
  metrics?: Metrics;
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
  /** The write itself (the signal ends it when the client cancels); returns the tool result and what the outcome record should say. */
  execute: (confirmedBy: ConfirmedBy, signal: AbortSignal | undefined) => Promise<{ result: CallToolResult; audit: OutcomeFields }>;
  /** The result for a client without elicitation: nothing sent, here is what to approve (text rendered). */
  confirmationRequired: (c: { token: string; expiresAt: string; preview: DevicePreview; text: string; request: ActionRequest }) => CallToolResult;
  /** Fields every audit record of this call carries besides the usual (the two-person rule's approval). */
  auditFields?: Partial<AuditRecord>;
  /** Offline checks before anything else (a refusal is audited as not_sent). */
  precheck?: () => void;
  /** The comment already passed MDE_COMMENT_PATTERN on an earlier call (an approval of a request). */
  commentChecked?: boolean;
  /** Read the device even when neither the confirmation nor a device rule needs it. */
  needsDevice?: boolean;
  /**
   * The two-person rule, once this caller has confirmed and before the audit intent: a result ends the
   * call there with nothing sent (the request now waits for an approval); a throw refuses it.
   */
  beforeIntent?: (c: { confirmed: Confirmed; preview: DevicePreview | undefined; record: AuditBase }) => Promise<CallToolResult | undefined>;
}

/** The fields every audit record of one call shares. */
export type AuditBase = Omit<AuditRecord, 'time' | 'event' | 'confirmation'>;

export type WriteGuard = (spec: WriteSpec, ctx: RequestContext) => Promise<CallToolResult>;

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
    // Remote mode: a confirmation token is bound to the caller who asked for it.
    const principal = ctx.caller ? { principal: principalKey(ctx.caller) } : {};
    const record: AuditBase = {
      requestId: randomUUID(),
      tool: spec.tool,
      action: subject.action,
      // Declared by the client: bounded (256 characters) and stripped of control characters like any caller-chosen text.
      client: ctx.client ? { name: displayValue(ctx.client.name) ?? '', version: displayValue(ctx.client.version) ?? '' } : null,
      ...auditCaller(ctx.caller),
      machineId: subject.machineId ?? null,
      hostName: null,
      comment: subject.comment,
      ...(subject.targetActionId ? { targetActionId: subject.targetActionId } : {}),
      ...spec.auditFields,
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
    try {
      // Offline first: a refused comment, a client that cannot confirm, a bad token read nothing.
      spec.precheck?.();
      if (!spec.commentChecked) checkComment(deps.policy, subject.comment);
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

      let preview: DevicePreview | undefined;
      if (decision.kind === 'ask' || decision.kind === 'issue_token' || hasDevicePolicy(deps.policy) || spec.needsDevice) {
        const device = await readDevice(request.machineId, signal);
        preview = { ...device.preview, ...(seen?.history ? { history: seen.history } : {}) };
        record.hostName = preview.hostName;
        checkDevice(deps.policy, request.machineId, device.facts);
      }

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
      if (spec.beforeIntent) {
        const diverted = await spec.beforeIntent({ confirmed, preview, record: { ...record } });
        if (diverted) return diverted;
      }
    } catch (error) {
      // Refusals were recorded by refuse(); a policy rule, a 404 or a cancelled call is recorded here.
      if (!recorded) await notSent(confirmed?.path ?? 'none', isToolError(error) ? (error.details.rule ?? error.kind) : 'error');
      throw error;
    }

    const intent = { ...record, confirmation: confirmed.path, ...(confirmed.confirmationId ? { confirmationId: confirmed.confirmationId } : {}) };
    // Written and flushed before the request: if it cannot be, the action is refused.
    await deps.audit.write({ ...intent, event: 'intent' });
    try {
      const { result, audit } = await spec.execute(CONFIRMED_BY[confirmed.path], signal);
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
