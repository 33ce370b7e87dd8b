/**
 * `remove_app_restriction`: lift Defender's app-execution restriction from one device
 * (POST /api/machines/{id}/unrestrictCodeExecution), only after the confirmation gate says yes.
 */
import { z } from 'zod';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { DefenderApi } from '../defender/client.js';
import { OPEN_ACTION_STATUSES, machineActionSchema, type MachineAction } from '../defender/schemas.js';
import { isToolError, ToolError } from '../errors.js';
import { describeDevice, quoteForDisplay, type DevicePreview } from '../confirmation/gate.js';
import type { ConfirmedBy, createWriteGuard } from './write-guard.js';
import { commentSchema, confirmationTokenSchema, devicePreviewSchema, machineIdSchema, type RequestContext } from './shared.js';

export const TOOL_NAME = 'remove_app_restriction';
export const ACTION_TYPE = 'UnrestrictCodeExecution';

export const inputShape = {
  machineId: machineIdSchema,
  comment: commentSchema.describe('Why the restriction is lifted; recorded in Defender as the action\'s comment (for example "INC-1234: device cleaned and re-imaged").'),
  confirmationToken: confirmationTokenSchema,
};

export const outputShape = {
  outcome: z
    .enum(['submitted', 'already_pending', 'confirmation_required'])
    .describe('submitted: Defender accepted a new action. already_pending: one was already pending or in progress. confirmation_required: nothing was sent; a human must approve first.'),
  machineAction: machineActionSchema.optional().describe('The MachineAction as the Defender API returned it (submitted, already_pending).'),
  confirmation: z
    .object({
      token: z.string(),
      expiresAt: z.string().describe('ISO 8601 time after which the token is refused.'),
      preview: devicePreviewSchema,
      comment: z.string(),
    })
    .optional()
    .describe('For confirmation_required: what the human must approve, and the single-use token to pass back.'),
  confirmedBy: z.enum(['elicitation', 'token', 'skipped']).optional().describe('How the action was confirmed.'),
  followUp: z
    .object({ tool: z.literal('get_machine_action'), arguments: z.object({ actionId: z.string(), waitForCompletion: z.boolean() }) })
    .optional()
    .describe('How to follow the action to completion.'),
};

export const annotations = {
  title: 'Remove app restriction (Defender for Endpoint)',
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: true,
} as const;

export const description = [
  'Lift the Microsoft Defender for Endpoint app-execution restriction from one device, so that any application may run on it again (not only Microsoft-signed code).',
  'Use it only after the device has been investigated and cleaned. It cannot be undone by this tool: re-restricting needs the Defender portal.',
  'A human must confirm every call: the server asks through an elicitation prompt when the client supports it; otherwise the first call returns outcome "confirmation_required" with a device preview and a token.',
  'Show that preview and the comment to the human, and only if they approve call again with the same machineId and comment plus confirmationToken.',
  'If an unrestrict action is already pending for the device, the result is outcome "already_pending" with that action; nothing new is sent.',
].join(' ');

export const CONSEQUENCE =
  'Lifting the restriction lets any application run on this device again, not only code signed by Microsoft. Confirm only if the device has been investigated and cleaned.';

export interface RemoveAppRestrictionDeps {
  api: DefenderApi;
  guard: ReturnType<typeof createWriteGuard>;
  now?: () => number;
}

type Args = { machineId: string; comment: string; confirmationToken?: string | undefined };
type Output = {
  outcome: 'submitted' | 'already_pending' | 'confirmation_required';
  machineAction?: MachineAction;
  confirmation?: { token: string; expiresAt: string; preview: DevicePreview; comment: string };
  confirmedBy?: ConfirmedBy;
  followUp?: { tool: 'get_machine_action'; arguments: { actionId: string; waitForCompletion: boolean } };
};
type Sent = { outcome: 'submitted' | 'already_pending'; action?: MachineAction; httpStatus?: number; note?: string };

/**
 * Defender answers a duplicate request either with HTTP 400 or with a 201 carrying the older pending
 * action. A 201 action is that older one when we returned it before, when it carries another comment, or
 * when it was created before we sent the request (allowing this much clock skew).
 */
const CLOCK_SKEW_MS = 15_000;

export function createRemoveAppRestrictionTool(deps: RemoveAppRestrictionDeps) {
  const now = deps.now ?? Date.now;
  /** Ids of actions this process reported as newly submitted (bounded; only for recognising repeats). */
  const submittedIds = new Set<string>();
  /** POSTs under way, by device: a concurrent call for the same device joins it instead of sending again. */
  const inFlight = new Map<string, Promise<Sent>>();

  async function findOpenAction(machineId: string): Promise<MachineAction | undefined> {
    const actions = await deps.api.listMachineActions({ machineId, type: ACTION_TYPE });
    // Filter here too: a proxy or an older API version may ignore $filter.
    return actions.find(
      (a) =>
        (a.machineId == null || a.machineId.toLowerCase() === machineId) &&
        (a.type == null || a.type === ACTION_TYPE) &&
        OPEN_ACTION_STATUSES.has(a.status ?? ''),
    );
  }

  async function post(args: Args): Promise<Sent> {
    const sentAt = now();
    let action: MachineAction;
    try {
      action = await deps.api.unrestrictCodeExecution(args.machineId, args.comment);
    } catch (error) {
      if ((isToolError(error) && error.details.alreadyInProgress)) {
        let pending: MachineAction | undefined;
        try {
          pending = await findOpenAction(args.machineId);
        } catch (lookupError) {
          // Defender said it is in progress; we only could not read which action it is (e.g. no Machine.Read.All).
          const why = lookupError instanceof Error ? lookupError.message : String(lookupError);
          return { outcome: 'already_pending', httpStatus: 400, note: `The pending action could not be read: ${why}` };
        }
        if (!pending) {
          throw new ToolError('upstream', 
            'Defender says an action is already in progress for this device, but no pending or in-progress unrestrict action was found.',
            'Another action on the device (for example a restriction or an isolation) may still be running: check the device\'s Action center in the Defender portal, then call again later.',
            error.upstream,
          );
        }
        return { outcome: 'already_pending', action: pending, httpStatus: 400 };
      }
      if (isToolError(error, 'outcome_unknown')) {
        // Never re-send blindly: see whether Defender holds an action for it.
        const pending = await findOpenAction(args.machineId).catch(() => undefined);
        if (pending) return { outcome: 'already_pending', action: pending };
      }
      throw error;
    }
    const olderPending =
      OPEN_ACTION_STATUSES.has(action.status ?? '') &&
      (submittedIds.has(action.id) ||
        (action.requestorComment != null && action.requestorComment.trim() !== args.comment) ||
        Date.parse(action.creationDateTimeUtc ?? '') < sentAt - CLOCK_SKEW_MS);
    if (!olderPending) {
      if (submittedIds.size >= 1000) submittedIds.clear();
      submittedIds.add(action.id);
    }
    return { outcome: olderPending ? 'already_pending' : 'submitted', action, httpStatus: 201 };
  }

  /** At most one POST per device at a time; a concurrent call gets the same action as already_pending. */
  async function postOnce(args: Args): Promise<Sent> {
    const running = inFlight.get(args.machineId);
    if (running) {
      const first = await running.catch(() => undefined);
      if (first?.action) return { outcome: 'already_pending', action: first.action };
    }
    const attempt = post(args).finally(() => inFlight.delete(args.machineId));
    inFlight.set(args.machineId, attempt);
    return attempt;
  }

  async function handler(args: Args, ctx: RequestContext = {}): Promise<CallToolResult> {
    return deps.guard({
      tool: TOOL_NAME,
      signal: ctx.signal,
      request: { action: 'unrestrict', verb: 'Lift the app restriction', consequence: CONSEQUENCE, machineId: args.machineId, comment: args.comment },
      confirmationToken: args.confirmationToken,
      confirmationRequired: ({ token, expiresAt, preview }) =>
        result({ outcome: 'confirmation_required', confirmation: { token, expiresAt, preview, comment: args.comment } }, args),
      execute: async (confirmedBy) => {
        const sent = await postOnce(args);
        return {
          result: result(
            {
              outcome: sent.outcome,
              ...(sent.action ? { machineAction: sent.action } : {}),
              confirmedBy,
              ...(sent.action ? { followUp: { tool: 'get_machine_action' as const, arguments: { actionId: sent.action.id, waitForCompletion: true } } } : {}),
            },
            args,
            sent.note,
          ),
          audit: {
            outcome: sent.outcome,
            ...(sent.httpStatus !== undefined ? { httpStatus: sent.httpStatus } : {}),
            ...(sent.action ? { machineActionId: sent.action.id, machineActionStatus: sent.action.status ?? undefined } : {}),
          },
        };
      },
    });
  }

  return { name: TOOL_NAME, config: { title: annotations.title, description, inputSchema: inputShape, outputSchema: outputShape, annotations }, handler };
}

/** Structured output plus a short text for clients that only show text. */
function result(output: Output, args: Args, note?: string): CallToolResult {
  const text = note ? `${summary(output, args)}\n${note}` : summary(output, args);
  return { content: [{ type: 'text', text }], structuredContent: output as unknown as Record<string, unknown> };
}

function summary(output: Output, args: Args): string {
  const a = output.machineAction;
  const host = a?.computerDnsName ?? args.machineId;
  switch (output.outcome) {
    case 'submitted':
      return [
        `Submitted: Defender accepted the request to lift the app restriction on ${host} (device ${args.machineId}).`,
        `Action ${a?.id}, status ${a?.status ?? 'unknown'}. Defender applies it when the device next checks in (usually within minutes).`,
        `Next: follow it with get_machine_action (actionId "${a?.id}", waitForCompletion: true) until it is Succeeded; while it is pending, cancel_machine_action can withdraw it.`,
      ].join('\n');
    case 'already_pending':
      if (!a) {
        return `Already pending: Defender reports an action already in progress for device ${args.machineId}; nothing new was sent.\nNext: check the device's Action center in the Defender portal; do not send another request.`;
      }
      return [
        `Already pending: an unrestrict action for ${host} (device ${args.machineId}) was already ${a.status === 'InProgress' ? 'in progress' : 'pending'}; nothing new was sent.`,
        `Action ${a.id}, status ${a.status ?? 'unknown'}, requested by ${a.requestor ?? 'unknown'} at ${a.creationDateTimeUtc ?? 'unknown time'}.`,
        `Next: follow it with get_machine_action (actionId "${a.id}", waitForCompletion: true); do not send another request.`,
      ].join('\n');
    case 'confirmation_required': {
      const c = output.confirmation!;
      return [
        'Confirmation required: nothing has been sent to Defender.',
        'Show the human exactly this and ask whether to proceed:',
        `  Lift the app restriction on ${c.preview.hostName ?? `device ${c.preview.machineId}`}`,
        `  Device: ${describeDevice(c.preview)}`,
        `  Device id: ${c.preview.machineId}`,
        ...(c.preview.note ? [`  Note: ${c.preview.note}`] : []),
        `  Comment: ${quoteForDisplay(c.comment)}`,
        `  ${CONSEQUENCE}`,
        `Only if the human explicitly approves, call ${TOOL_NAME} again with the same machineId and comment and confirmationToken "${c.token}".`,
        `The token works once and expires at ${c.expiresAt}. If the human declines, do not call again.`,
      ].join('\n');
    }
  }
}
