/**
 * `remove_app_restriction`: lift Defender's app-execution restriction from one device
 * (POST /api/machines/{id}/unrestrictCodeExecution), only after the write guard's confirmation says yes.
 * Duplicate handling (an action already pending, concurrent calls, unknown outcomes) is the Defender
 * layer's (defender/unrestrict.ts).
 */
import { z } from 'zod';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { displayText } from '../confirmation/render.js';
import { machineActionSchema } from '../defender/schemas.js';
import type { Sent } from '../defender/unrestrict.js';
import { approvalSchema } from './approval-view.js';
import { defineTool, type Registered } from './define.js';
import { commentSchema, confirmationTokenSchema, devicePreviewSchema, machineIdSchema } from './shared.js';

const TOOL_NAME = 'remove_app_restriction';

const inputSchema = {
  machineId: machineIdSchema,
  comment: commentSchema.describe('Why the restriction is lifted; recorded in Defender as the action\'s comment (for example "INC-1234: device cleaned and re-imaged").'),
  confirmationToken: confirmationTokenSchema,
};

const outputSchema = {
  outcome: z
    .enum(['submitted', 'already_pending', 'confirmation_required', 'approval_pending'])
    .describe(
      'submitted: Defender accepted a new action. already_pending: one was already pending or in progress. confirmation_required: nothing was sent; a human must approve first. approval_pending (only where the server enforces the two-person rule): nothing was sent; another analyst must approve it.',
    ),
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
  approval: approvalSchema.optional().describe('For approval_pending: the request awaiting a second analyst (id, expiresAt, requestedBy, the device preview, the comment).'),
  confirmedBy: z.enum(['elicitation', 'token', 'skipped']).optional().describe('How the action was confirmed.'),
  followUp: z
    .object({ tool: z.literal('get_machine_action'), arguments: z.object({ actionId: z.string(), waitForCompletion: z.boolean() }) })
    .optional()
    .describe('How to follow the action to completion.'),
};

const annotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: true,
} as const;

const description = ({ twoPerson }: Registered) => [
  'Lift the Microsoft Defender for Endpoint app-execution restriction from one device, so that any application may run on it again (not only Microsoft-signed code).',
  'Use it only after the device has been investigated and cleaned. It cannot be undone by this tool: re-restricting needs the Defender portal.',
  'A human must confirm every call: the server asks through an elicitation prompt when the client supports it; otherwise the first call returns outcome "confirmation_required" with a device preview and a token.',
  'Show that preview and the comment to the human, and only if they approve call again with the same machineId and comment plus confirmationToken.',
  'If an unrestrict action is already pending for the device, the result is outcome "already_pending" with that action; nothing new is sent.',
  ...(twoPerson ? ['Where the server enforces the two-person rule, the result is outcome "approval_pending": nothing is sent until another analyst approves it with approve_action; follow it with get_approval.'] : []),
].join(' ');

const CONSEQUENCE =
  'Lifting the restriction lets any application run on this device again, not only code signed by Microsoft. Confirm only if the device has been investigated and cleaned.';

type Output = z.infer<z.ZodObject<typeof outputSchema>>;

export const removeAppRestriction = defineTool({
  name: TOOL_NAME,
  title: 'Remove app restriction (Defender for Endpoint)',
  description,
  inputSchema,
  outputSchema,
  annotations,
  async handler(args, ctx, { guard, unrestrict, approvals }) {
    const pendingResult = (sent: Sent) =>
      result(
        {
          outcome: sent.outcome,
          ...(sent.action ? { machineAction: sent.action } : {}),
          ...(sent.action ? { followUp: { tool: 'get_machine_action' as const, arguments: { actionId: sent.action.id, waitForCompletion: true } } } : {}),
        },
        args.machineId,
        sent,
      );
    return guard(
      {
        tool: TOOL_NAME,
        subject: { action: 'unrestrict', machineId: args.machineId, comment: args.comment },
        describe: async () => ({ action: 'unrestrict', verb: 'Lift the app restriction', consequence: CONSEQUENCE, machineId: args.machineId, comment: args.comment }),
        // One read of the history: an action already pending settles the call (no prompt, no POST), and
        // the human is told whether the device is restricted at all.
        inspect: async (machineId, signal) => {
          const history = await unrestrict.history(machineId, signal);
          if (!history) return undefined;
          if (history.pending) {
            const sent: Sent = { outcome: 'already_pending', action: history.pending };
            return {
              settled: {
                result: pendingResult(sent),
                audit: { outcome: 'already_pending', machineActionId: history.pending.id, machineActionStatus: history.pending.status ?? undefined },
              },
            };
          }
          return { history: history.summary };
        },
        confirmationToken: args.confirmationToken,
        sameArguments: 'machineId and comment',
        // Two-person rule: once the requester confirmed, a device in the rule's scope waits for a second analyst.
        ...(approvals ? { approval: { kind: 'request' as const } } : {}),
        confirmationRequired: ({ token, expiresAt, preview, text }) => ({
          content: [{ type: 'text', text }],
          structuredContent: { outcome: 'confirmation_required', confirmation: { token, expiresAt, preview, comment: args.comment } } satisfies Output,
        }),
        execute: async (confirmedBy, signal) => {
          const sent = await unrestrict.submit(args.machineId, args.comment, signal);
          return {
            result: result(
              {
                outcome: sent.outcome,
                ...(sent.action ? { machineAction: sent.action } : {}),
                confirmedBy,
                ...(sent.action ? { followUp: { tool: 'get_machine_action' as const, arguments: { actionId: sent.action.id, waitForCompletion: true } } } : {}),
              },
              args.machineId,
              sent,
            ),
            audit: {
              outcome: sent.outcome,
              ...(sent.httpStatus !== undefined ? { httpStatus: sent.httpStatus } : {}),
              ...(sent.action ? { machineActionId: sent.action.id, machineActionStatus: sent.action.status ?? undefined } : {}),
            },
          };
        },
      },
      ctx,
    );
  },
});

/** Structured output plus a short text for clients that only show text. */
function result(output: Output, machineId: string, sent: Sent): CallToolResult {
  const text = sent.note ? `${summary(output, machineId)}\n${sent.note}` : summary(output, machineId);
  return { content: [{ type: 'text', text }], structuredContent: output };
}

function summary(output: Output, machineId: string): string {
  const a = output.machineAction;
  const host = displayText(a?.computerDnsName ?? machineId);
  switch (output.outcome) {
    case 'submitted':
      return [
        `Submitted: Defender accepted the request to lift the app restriction on ${host} (device ${machineId}).`,
        `Action ${a?.id}, status ${a?.status ?? 'unknown'}. Defender applies it when the device next checks in (usually within minutes).`,
        `Next: follow it with get_machine_action (actionId "${a?.id}", waitForCompletion: true) until it is Succeeded; while it is pending, cancel_machine_action can withdraw it.`,
      ].join('\n');
    case 'already_pending':
      if (!a) {
        return `Already pending: Defender reports an action already in progress for device ${machineId}; nothing new was sent.\nNext: check the device's Action center in the Defender portal; do not send another request.`;
      }
      return [
        `Already pending: an unrestrict action for ${host} (device ${machineId}) was already ${a.status === 'InProgress' ? 'in progress' : 'pending'}; nothing new was sent.`,
        `Action ${displayText(a.id)}, status ${displayText(a.status ?? 'unknown')}, requested by ${displayText(a.requestor ?? 'unknown')} at ${displayText(a.creationDateTimeUtc ?? 'unknown time')}.`,
        `Next: follow it with get_machine_action (actionId "${a.id}", waitForCompletion: true); do not send another request.`,
      ].join('\n');
    case 'confirmation_required':
      return 'Confirmation required: nothing has been sent to Defender.';
    case 'approval_pending':
      return 'Approval pending: nothing has been sent to Defender.';
  }
}
