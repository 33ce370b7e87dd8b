/**
 * `approve_action` (two-person rule): a second analyst approves a pending request, through their own
 * confirmation step, and the action goes out On-Behalf-Of the approver (this call's identity) with a
 * comment naming both. Decided exactly once: a concurrent or later approver learns who decided first.
 */
import { z } from 'zod';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { combinedComment } from '../approval/approvals.js';
import { displayName } from '../auth/caller.js';
import { machineActionSchema } from '../defender/schemas.js';
import { approvalIdSchema, approvalSchema, approvalView } from './approval-view.js';
import { defineTool } from './define.js';
import { COMMENT_MAX_LENGTH, confirmationTokenSchema, devicePreviewSchema } from './shared.js';
import { twoPersonOff } from './get-approval.js';

const TOOL_NAME = 'approve_action';

const CONSEQUENCE =
  'Approving sends the request now, under your own identity: Defender records you as the requestor and checks your Defender role. Lifting the restriction lets any application run on this device again, not only code signed by Microsoft. Approve only if you agree the device has been investigated and cleaned.';

const outputSchema = {
  outcome: z
    .enum(['submitted', 'already_pending', 'confirmation_required'])
    .describe('submitted: approved, and Defender accepted the action. already_pending: approved; an unrestrict action was already pending, nothing new was sent. confirmation_required: nothing decided yet; you must confirm first.'),
  approval: approvalSchema.optional().describe('The approval after this call.'),
  machineAction: machineActionSchema.optional(),
  confirmation: z
    .object({ token: z.string(), expiresAt: z.string(), preview: devicePreviewSchema, comment: z.string() })
    .optional()
    .describe('For confirmation_required: what the approver must confirm, and the single-use token (bound to the approver) to pass back.'),
  confirmedBy: z.enum(['elicitation', 'token', 'skipped']).optional(),
  followUp: z
    .object({ tool: z.literal('get_machine_action'), arguments: z.object({ actionId: z.string(), waitForCompletion: z.boolean() }) })
    .optional(),
};
type Output = z.infer<z.ZodObject<typeof outputSchema>>;

export const approveAction = defineTool({
  name: TOOL_NAME,
  title: 'Approve a pending request (two-person rule)',
  description: [
    'Approve another analyst\'s pending request to lift an app restriction (two-person rule). You must be a different person than the requester and hold the approver app role.',
    'You confirm it yourself, exactly as for remove_app_restriction (an elicitation prompt, or a confirmation_required result with a token to pass back after the human approves).',
    'The action is then sent under your own identity, with a comment naming the requester and you. A request is decided once: if someone decided it first, you are told who.',
  ].join(' '),
  inputSchema: { approvalId: approvalIdSchema, confirmationToken: confirmationTokenSchema },
  outputSchema,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async handler(args, ctx, { guard, unrestrict, approvals, logger }) {
    if (!approvals) throw twoPersonOff();
    const approval = await approvals.get(args.approvalId, { tool: TOOL_NAME, caller: ctx.caller, client: ctx.client });
    const comment = combinedComment(approval.comment, approval.requestedBy.name, ctx.caller ? displayName(ctx.caller) : 'unknown', COMMENT_MAX_LENGTH);
    return guard(
      {
        tool: TOOL_NAME,
        // Bound to this approval and (through the guard) to the approver: a token cannot approve another.
        subject: { action: `approve:${approval.id}`, machineId: approval.machineId, comment },
        describe: async () => ({ action: `approve:${approval.id}`, verb: 'Approve lifting the app restriction', consequence: CONSEQUENCE, machineId: approval.machineId, comment }),
        confirmationToken: args.confirmationToken,
        sameArguments: 'approvalId',
        // The guard checks this caller may decide it (offline, first), and decides it once confirmed.
        approval: { kind: 'grant', approval },
        confirmationRequired: ({ token, expiresAt, preview, text }) => ({
          content: [{ type: 'text', text }],
          structuredContent: { outcome: 'confirmation_required', approval: approvalView(approval), confirmation: { token, expiresAt, preview, comment } } satisfies Output,
        }),
        execute: async (confirmedBy, signal, granted) => {
          const { sent, approval: after, unrecorded } = await approvals.send(granted ?? approval, comment, (c) => unrestrict.submit(approval.machineId, c, signal), logger);
          const output: Output = {
            outcome: sent.outcome,
            approval: approvalView(after),
            ...(sent.action ? { machineAction: sent.action } : {}),
            confirmedBy,
            ...(sent.action ? { followUp: { tool: 'get_machine_action' as const, arguments: { actionId: sent.action.id, waitForCompletion: true } } } : {}),
          };
          const shown = result(output, approval.requestedBy.name, sent.note);
          if (unrecorded) shown.content.push({ type: 'text', text: `Warning: the action was sent, but the approval could not be updated with it (${unrecorded}); get_approval shows it approved without the MachineAction. Follow the action with get_machine_action.` });
          return {
            result: shown,
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

function result(output: Output, requester: string, note: string | undefined): CallToolResult {
  const a = output.machineAction;
  const lines = [
    output.outcome === 'submitted'
      ? `Approved and submitted: Defender accepted the request to lift the app restriction (requested by ${requester}), under your identity.`
      : `Approved: an unrestrict action was already pending for this device, so nothing new was sent (requested by ${requester}).`,
    ...(a ? [`Action ${a.id}, status ${a.status ?? 'unknown'}. Next: follow it with get_machine_action (actionId "${a.id}", waitForCompletion: true).`] : []),
    ...(note ? [note] : []),
  ];
  return { content: [{ type: 'text', text: lines.join('\n') }], structuredContent: output };
}
