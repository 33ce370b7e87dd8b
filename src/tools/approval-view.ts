/** How the approval tools (and the write guard's approval_pending) show an approval: schema, text and result. */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Approval, ApprovalPerson } from '../approval/store.js';
import { describeDevice, displayText, quoteForDisplay } from '../confirmation/render.js';
import { machineActionSchema } from '../defender/schemas.js';
import { GUID } from '../net/hosts.js';
import { devicePreviewSchema } from './shared.js';

export const approvalIdSchema = z
  .string({ error: 'approvalId must be the id of an approval (a GUID), as remove_app_restriction or list_pending_approvals returned it.' })
  .trim()
  .regex(GUID, {
    message: 'approvalId must be the id of an approval (a GUID such as 3f2b1c9e-8d7a-4e6f-9b0c-1a2b3c4d5e6f), as remove_app_restriction or list_pending_approvals returned it.',
  })
  .toLowerCase()
  .describe('The approval id (a GUID) from remove_app_restriction\'s approval_pending result or list_pending_approvals.');

const personSchema = z.object({
  kind: z.enum(['user', 'app', 'anonymous']),
  name: z.string().describe('Sign-in name, or the app id.'),
  oid: z.string().optional(),
});

export const approvalSchema = z.object({
  id: z.string(),
  status: z
    .enum(['pending', 'approved', 'rejected', 'expired', 'failed'])
    .describe('pending: awaits a second analyst. approved: sent (see machineAction). rejected, expired: nothing was sent. failed: approved, but sending failed (see reason).'),
  machineId: z.string(),
  comment: z.string().describe('The requester\'s comment.'),
  preview: devicePreviewSchema.describe('The device as the requester saw it.'),
  requestedBy: personSchema,
  requestedAt: z.string(),
  expiresAt: z.string().describe('ISO 8601 time after which it can no longer be approved.'),
  decidedBy: personSchema.optional(),
  decidedAt: z.string().optional(),
  reason: z.string().optional().describe('Why it was rejected, or why sending failed.'),
  outcome: z.enum(['submitted', 'already_pending']).optional().describe('What Defender answered once it was sent.'),
  machineAction: machineActionSchema.optional().describe('The MachineAction, once sent.'),
  sentComment: z.string().optional().describe('The comment recorded in Defender, naming requester and approver.'),
});
export type ApprovalView = z.infer<typeof approvalSchema>;

const person = (p: ApprovalPerson) => ({ kind: p.kind, name: p.name, ...(p.oid ? { oid: p.oid } : {}) });

/** What a client sees of an approval: no principal keys, nothing beyond the audit's names. */
export function approvalView(a: Approval): ApprovalView {
  return {
    id: a.id,
    status: a.status,
    machineId: a.machineId,
    comment: a.comment,
    preview: a.preview,
    requestedBy: person(a.requestedBy),
    requestedAt: a.requestedAt,
    expiresAt: a.expiresAt,
    ...(a.decidedBy ? { decidedBy: person(a.decidedBy) } : {}),
    ...(a.decidedAt ? { decidedAt: a.decidedAt } : {}),
    ...(a.reason ? { reason: a.reason } : {}),
    ...(a.outcome ? { outcome: a.outcome } : {}),
    ...(a.machineAction ? { machineAction: a.machineAction } : {}),
    ...(a.sentComment ? { sentComment: a.sentComment } : {}),
  };
}

/** One approval in a few lines, every outside text escaped. */
export function approvalText(a: Approval): string {
  const device = a.preview.hostName ? displayText(a.preview.hostName) : `device ${a.machineId}`;
  const lines = [
    `Approval ${a.id}: ${a.status}. Lift the app restriction on ${device} (device ${a.machineId}).`,
    `  Requested by ${displayText(a.requestedBy.name)} at ${a.requestedAt}; ${a.status === 'pending' ? 'expires' : 'deadline was'} ${a.expiresAt}.`,
    `  Device: ${describeDevice(a.preview)}`,
    `  Comment: ${quoteForDisplay(a.comment)}`,
  ];
  if (a.decidedBy) lines.push(`  ${a.status === 'rejected' ? 'Rejected' : 'Approved'} by ${displayText(a.decidedBy.name)} at ${a.decidedAt}.`);
  else if (a.status === 'expired') lines.push(`  Expired at ${a.decidedAt ?? a.expiresAt}: nothing was sent.`);
  if (a.reason) lines.push(`  ${a.status === 'rejected' ? 'Reason' : 'Failure'}: ${quoteForDisplay(a.reason)}`);
  if (a.machineAction) lines.push(`  Sent: ${a.outcome}; action ${a.machineAction.id}, status ${a.machineAction.status ?? 'unknown'}. Follow it with get_machine_action.`);
  return lines.join('\n');
}

/**
 * approval_pending (the two-person rule took a confirmed request): nothing sent; what the requester tells
 * the human, and how the approver proceeds.
 */
export function approvalPendingResult(approval: Approval, role: string, confirmedBy: 'elicitation' | 'token' | 'skipped'): CallToolResult {
  const host = approval.preview.hostName ?? `device ${approval.machineId}`;
  const text = [
    `Approval pending: nothing has been sent to Defender yet. The two-person rule (MDE_APPROVAL=two-person) needs a second analyst, holding the ${role} role, to approve lifting the app restriction on ${host} (device ${approval.machineId}).`,
    `Approval id ${approval.id}; it expires at ${approval.expiresAt}.`,
    `Next: tell the human to ask a colleague to approve it (they call approve_action with approvalId "${approval.id}"; list_pending_approvals shows it to them). Follow it with get_approval; do not call ${approval.tool} again for this device meanwhile.`,
  ].join('\n');
  return { content: [{ type: 'text', text }], structuredContent: { outcome: 'approval_pending', approval: approvalView(approval), confirmedBy } };
}
