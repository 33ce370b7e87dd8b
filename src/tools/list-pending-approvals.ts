/** `list_pending_approvals` (two-person rule): the requests awaiting a second analyst, oldest first. */
import { z } from 'zod';
import { approvalSchema, approvalText, approvalView } from './approval-view.js';
import { defineTool } from './define.js';
import { twoPersonOff } from './get-approval.js';

export const listPendingApprovals = defineTool({
  name: 'list_pending_approvals',
  title: 'List pending approvals (two-person rule)',
  description:
    'Requests to lift an app restriction that await a second analyst\'s decision, oldest first (expired ones are left out): all of them for analysts holding the approver role, one\'s own requests for others. Approve one with approve_action, or reject it with reject_action; you cannot approve your own.',
  inputSchema: {},
  outputSchema: { approvals: z.array(approvalSchema), count: z.number().int() },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async handler(_args, ctx, { approvals }) {
    if (!approvals) throw twoPersonOff();
    const pending = await approvals.listPending({ tool: 'list_pending_approvals', caller: ctx.caller, client: ctx.client });
    const text = pending.length === 0 ? 'No approvals are pending.' : [`${pending.length} pending approval(s), oldest first:`, ...pending.map(approvalText)].join('\n');
    return { content: [{ type: 'text', text }], structuredContent: { approvals: pending.map(approvalView), count: pending.length } };
  },
});
