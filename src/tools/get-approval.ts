/** `get_approval` (two-person rule): one approval as it stands, with the MachineAction once it was sent. */
import { ToolError } from '../errors.js';
import { approvalIdSchema, approvalSchema, approvalText, approvalView } from './approval-view.js';
import { defineTool } from './define.js';

/** The approval tools exist only with MDE_APPROVAL=two-person; this guards a mis-wiring. */
export function twoPersonOff(): ToolError {
  return new ToolError('policy', 'The two-person rule is off on this server (MDE_APPROVAL=none): there are no approvals.', 'Call remove_app_restriction directly.', {}, { rule: 'MDE_APPROVAL' });
}

export const getApproval = defineTool({
  name: 'get_approval',
  title: 'Get an approval (two-person rule)',
  description:
    'One approval by id: pending (awaits a second analyst), approved (sent; with the MachineAction Defender returned), rejected (with the reason), expired, or failed (approved, but sending failed). The requester follows their request with it; analysts holding the approver role see every approval.',
  inputSchema: { approvalId: approvalIdSchema },
  outputSchema: { approval: approvalSchema },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async handler(args, ctx, { approvals }) {
    if (!approvals) throw twoPersonOff();
    const approval = await approvals.view(args.approvalId, { tool: 'get_approval', caller: ctx.caller, client: ctx.client });
    return { content: [{ type: 'text', text: approvalText(approval) }], structuredContent: { approval: approvalView(approval) } };
  },
});
