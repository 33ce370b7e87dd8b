/**
 * `cancel_machine_action`: cancel a machine action that has not finished (for example an unrestrict
 * requested by mistake), behind the same policy, confirmation and audit path as every write.
 */
import { z } from 'zod';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { DefenderApi } from '../defender/client.js';
import { FINAL_ACTION_STATUSES, machineActionSchema } from '../defender/schemas.js';
import { ToolError } from '../errors.js';
import { describeDevice, quoteForDisplay } from '../confirmation/gate.js';
import { actionIdSchema, commentSchema, confirmationTokenSchema, devicePreviewSchema, type RequestContext } from './shared.js';
import type { ConfirmedBy, createWriteGuard } from './write-guard.js';

export const TOOL_NAME = 'cancel_machine_action';

export const inputShape = {
  actionId: actionIdSchema,
  comment: commentSchema.describe('Why the action is cancelled; recorded in Defender as the cancellation comment.'),
  confirmationToken: confirmationTokenSchema,
};

export const outputShape = {
  outcome: z.enum(['cancelled', 'confirmation_required']).describe('cancelled: Defender cancelled the action. confirmation_required: nothing was sent; a human must approve first.'),
  machineAction: machineActionSchema.optional().describe('The cancelled MachineAction as the API returned it.'),
  confirmation: z
    .object({ token: z.string(), expiresAt: z.string(), preview: devicePreviewSchema, comment: z.string(), action: machineActionSchema })
    .optional(),
  confirmedBy: z.enum(['elicitation', 'token', 'skipped']).optional(),
};

export const annotations = { title: 'Cancel a machine action (Defender for Endpoint)', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true } as const;

export const description =
  'Cancel a Defender machine action that is still Pending or InProgress, for example an unrestrict requested by mistake. A human must confirm, exactly as for remove_app_restriction (elicitation prompt, or a confirmation_required result with a token to pass back after approval). Finished actions cannot be cancelled.';

export function createCancelMachineActionTool(deps: { api: DefenderApi; guard: ReturnType<typeof createWriteGuard> }) {
  async function handler(args: { actionId: string; comment: string; confirmationToken?: string }, ctx: RequestContext = {}): Promise<CallToolResult> {
    const target = await deps.api.getMachineAction(args.actionId);
    if (FINAL_ACTION_STATUSES.has(target.status ?? '')) {
      throw new ToolError('invalid_input', 
        `Action ${target.id} (${target.type ?? 'unknown type'}) is already ${target.status}: only Pending or InProgress actions can be cancelled. Nothing was sent.`,
        'Nothing to cancel. To undo a finished action, request the opposite action (for example restrict again in the Defender portal).',
      );
    }
    if (!target.machineId) {
      throw new ToolError('upstream', 'Defender returned the action without its device id, so it cannot be shown for confirmation.', 'Cancel it from the Defender portal\'s Action center.');
    }
    const machineId = target.machineId.toLowerCase();
    const type = target.type ?? 'machine';
    return deps.guard({
      tool: TOOL_NAME,
      signal: ctx.signal,
      // Bound to this action id, so a token for one cancellation cannot cancel another.
      request: {
        action: `cancel:${target.id}`,
        verb: `Cancel the ${target.status} ${type} action ${target.id}`,
        consequence:
          type === 'UnrestrictCodeExecution'
            ? 'Cancelling withdraws the pending request to lift the app restriction: the device stays restricted.'
            : 'Cancelling withdraws the action before it completes: the device stays as it is now.',
        machineId,
        comment: args.comment,
      },
      targetActionId: target.id,
      confirmationToken: args.confirmationToken,
      confirmationRequired: ({ token, expiresAt, preview }) => ({
        content: [
          {
            type: 'text',
            text: [
              'Confirmation required: nothing has been sent to Defender.',
              'Show the human exactly this and ask whether to proceed:',
              `  Cancel the ${target.status} ${type} action ${target.id}, requested by ${target.requestor ?? 'unknown'} at ${target.creationDateTimeUtc ?? '?'}${target.requestorComment ? ` ("${target.requestorComment}")` : ''}`,
              `  Device: ${describeDevice(preview)} (id ${machineId})`,
              `  Comment: ${quoteForDisplay(args.comment)}`,
              `Only if the human explicitly approves, call ${TOOL_NAME} again with the same actionId and comment and confirmationToken "${token}".`,
              `The token works once and expires at ${expiresAt}.`,
            ].join('\n'),
          },
        ],
        structuredContent: { outcome: 'confirmation_required', confirmation: { token, expiresAt, preview, comment: args.comment, action: target } },
      }),
      execute: async (confirmedBy: ConfirmedBy) => {
        const cancelled = await deps.api.cancelMachineAction(target.id, args.comment);
        return {
          result: {
            content: [{ type: 'text', text: `Cancelled: action ${cancelled.id} (${cancelled.type ?? type}) is now ${cancelled.status ?? 'unknown'}.` }],
            structuredContent: { outcome: 'cancelled', machineAction: cancelled, confirmedBy },
          },
          audit: { outcome: 'cancelled', httpStatus: 200, machineActionId: cancelled.id, machineActionStatus: cancelled.status ?? undefined },
        };
      },
    });
  }
  return { name: TOOL_NAME, config: { title: annotations.title, description, inputSchema: inputShape, outputSchema: outputShape, annotations }, handler };
}
