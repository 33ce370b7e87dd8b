/**
 * `cancel_machine_action`: cancel a machine action that has not finished (for example an unrestrict
 * requested by mistake), behind the same policy, confirmation and audit path as every write.
 */
import { z } from 'zod';
import { FINAL_ACTION_STATUSES, machineActionSchema } from '../defender/schemas.js';
import { displayText } from '../confirmation/render.js';
import { ToolError } from '../errors.js';
import { defineTool } from './define.js';
import { actionIdSchema, commentSchema, confirmationTokenSchema, devicePreviewSchema } from './shared.js';

const TOOL_NAME = 'cancel_machine_action';

export const cancelMachineAction = defineTool({
  name: TOOL_NAME,
  title: 'Cancel a machine action (Defender for Endpoint)',
  description:
    'Cancel a Defender machine action that is still Pending or InProgress, for example an unrestrict requested by mistake. A human must confirm, exactly as for remove_app_restriction (elicitation prompt, or a confirmation_required result with a token to pass back after approval). Finished actions cannot be cancelled.',
  inputSchema: {
    actionId: actionIdSchema,
    comment: commentSchema.describe('Why the action is cancelled; recorded in Defender as the cancellation comment.'),
    confirmationToken: confirmationTokenSchema,
  },
  outputSchema: {
    outcome: z.enum(['cancelled', 'confirmation_required']).describe('cancelled: Defender cancelled the action. confirmation_required: nothing was sent; a human must approve first.'),
    machineAction: machineActionSchema.optional().describe('The cancelled MachineAction as the API returned it.'),
    confirmation: z
      .object({ token: z.string(), expiresAt: z.string(), preview: devicePreviewSchema, comment: z.string(), action: machineActionSchema })
      .optional(),
    confirmedBy: z.enum(['elicitation', 'token', 'skipped']).optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async handler(args, ctx, { api, guard, approvals }) {
    return guard(
      {
        tool: TOOL_NAME,
        // Bound to this action id, so a token for one cancellation cannot cancel another. The device is
        // known only after reading the action: the offline checks (comment, confirmation, token) come first.
        subject: { action: `cancel:${args.actionId}`, comment: args.comment, targetActionId: args.actionId },
        describe: async (signal) => {
          const target = await api.getMachineAction(args.actionId, signal);
          if (FINAL_ACTION_STATUSES.has(target.status ?? '')) {
            throw new ToolError(
              'invalid_input',
              `Action ${displayText(target.id)} (${displayText(target.type ?? 'unknown type')}) is already ${displayText(target.status ?? '')}: only Pending or InProgress actions can be cancelled. Nothing was sent.`,
              'Nothing to cancel. To undo a finished action, request the opposite action (for example restrict again in the Defender portal).',
            );
          }
          if (!target.machineId) {
            throw new ToolError('upstream', 'Defender returned the action without its device id, so it cannot be shown for confirmation.', 'Cancel it from the Defender portal\'s Action center.');
          }
          const type = target.type ?? 'machine';
          return {
            action: `cancel:${args.actionId}`,
            verb: `Cancel the ${target.status} ${type} action ${target.id}`,
            consequence:
              type === 'UnrestrictCodeExecution'
                ? 'Cancelling withdraws the pending request to lift the app restriction: the device stays restricted.'
                : 'Cancelling withdraws the action before it completes: the device stays as it is now.',
            machineId: target.machineId.toLowerCase(),
            comment: args.comment,
            target,
          };
        },
        confirmationToken: args.confirmationToken,
        sameArguments: 'actionId and comment',
        // Two-person rule: cancelling a pending restriction needs a second analyst, as lifting it does.
        ...(approvals ? { approval: { kind: 'cancel' as const } } : {}),
        confirmationRequired: ({ token, expiresAt, preview, text, request }) => ({
          content: [{ type: 'text', text }],
          structuredContent: { outcome: 'confirmation_required', confirmation: { token, expiresAt, preview, comment: args.comment, action: request.target! } },
        }),
        execute: async (confirmedBy, signal) => {
          const cancelled = await api.cancelMachineAction(args.actionId, args.comment, signal);
          return {
            result: {
              content: [{ type: 'text', text: `Cancelled: action ${displayText(cancelled.id)} (${displayText(cancelled.type ?? 'machine')}) is now ${displayText(cancelled.status ?? 'unknown')}.` }],
              structuredContent: { outcome: 'cancelled', machineAction: cancelled, confirmedBy },
            },
            audit: { outcome: 'cancelled', httpStatus: 200, machineActionId: cancelled.id, machineActionStatus: cancelled.status ?? undefined },
          };
        },
      },
      ctx,
    );
  },
});
