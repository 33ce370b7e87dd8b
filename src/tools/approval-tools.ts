/**
 * The two-person rule's tools, offered only with MDE_APPROVAL=two-person. A module of its own so that
 * cli.ts loads them (and the approval service) only then: stdio start-up never pays for them.
 */
import { approveAction } from './approve-action.js';
import type { Tool } from './define.js';
import { getApproval } from './get-approval.js';
import { listPendingApprovals } from './list-pending-approvals.js';
import { rejectAction } from './reject-action.js';

export const APPROVAL_TOOLS: readonly Tool[] = [listPendingApprovals, getApproval, approveAction, rejectAction];
