/**
 * `reject_action` (two-person rule): an approver turns a pending request down, or the requester withdraws
 * it, with a reason. Nothing is sent to Defender; decided exactly once, like an approval. The two-person
 * rule's own pipeline (approvals.rejectRequest) checks the decider, decides and audits.
 */
import { z } from 'zod';
import { approvalIdSchema, approvalSchema, approvalText, approvalView } from './approval-view.js';
import { defineTool } from './define.js';
import { twoPersonOff } from './get-approval.js';
import { findHidden } from '../confirmation/characters.js';

const REASON_HELP = 'reason is required: say why the request is rejected (it is recorded in the audit trail and shown to the requester).';

export const rejectAction = defineTool({
  name: 'reject_action',
  title: 'Reject a pending request (two-person rule)',
  description:
    'Reject a pending request to lift an app restriction, with a reason: nothing is sent to Defender and the request can no longer be approved. An analyst holding the approver role may reject another\'s request; the requester may withdraw their own.',
  inputSchema: {
    approvalId: approvalIdSchema,
    reason: z
      .string({ error: REASON_HELP })
      .trim()
      .min(1, { message: REASON_HELP })
      .max(500, { message: 'reason must be at most 500 characters.' })
      // The same rule as a comment: by Unicode property (control, format, invisible, line-separator characters).
      .refine((t) => !findHidden(t), { message: 'reason must be one line of visible text: no control, format, invisible, private-use or line-separator characters.' })
      .describe('Why it is rejected; recorded in the audit trail and shown to the requester.'),
  },
  outputSchema: { approval: approvalSchema },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async handler(args, ctx, { approvals }) {
    if (!approvals) throw twoPersonOff();
    const auditCtx = { tool: 'reject_action', caller: ctx.caller, client: ctx.client };
    const rejected = await approvals.rejectRequest(await approvals.get(args.approvalId, auditCtx), args.reason, auditCtx);
    return { content: [{ type: 'text', text: `Rejected: nothing was sent to Defender.\n${approvalText(rejected)}` }], structuredContent: { approval: approvalView(rejected) } };
  },
});
