/**
 * Policy guards an operator sets to fence off what agents may touch: device-group and tag allow/deny
 * lists and a required comment pattern. Pure checks; each refusal names the rule and what to change.
 * Deny wins over allow. Names match case-insensitively, as the Defender portal shows them.
 */
import type { CommentPattern } from './comment-pattern.js';
import { ToolError } from './errors.js';

/** Optional guards, checked before any confirmation prompt. Lists are matched case-insensitively. */
export interface Policy {
  allowDeviceGroups: string[];
  denyDeviceGroups: string[];
  allowTags: string[];
  denyTags: string[];
  commentPattern: CommentPattern | undefined;
}

/** The policy as configured: the comment pattern still as text (assemble.ts compiles it with compileCommentPattern). */
export type PolicySettings = Omit<Policy, 'commentPattern'> & { commentPattern: string | undefined };

export const NO_POLICY: Policy = { allowDeviceGroups: [], denyDeviceGroups: [], allowTags: [], denyTags: [], commentPattern: undefined };

const NOTHING_SENT = 'Nothing was sent to Defender.';
const policyError = (rule: string, message: string, nextStep: string) => new ToolError('policy', message, nextStep, {}, { rule });

export function hasDevicePolicy(policy: Policy): boolean {
  return policy.allowDeviceGroups.length + policy.denyDeviceGroups.length + policy.allowTags.length + policy.denyTags.length > 0;
}

export function checkComment(policy: Policy, comment: string): void {
  if (policy.commentPattern && !policy.commentPattern.test(comment)) {
    throw policyError(
      'MDE_COMMENT_PATTERN',
      `Refused by policy: the comment must match the pattern /${policy.commentPattern.source}/ (MDE_COMMENT_PATTERN). ${NOTHING_SENT}`,
      'Call again with a comment that matches, for example one that names the ticket.',
    );
  }
}

/** What the rules look at; null where Defender's record lacks the field. */
export interface DeviceFacts {
  hostName: string | null;
  deviceGroup: string | null;
  tags: readonly string[] | null;
}

/**
 * `device` is undefined when its details could not be read (no Machine.Read.All), and a field is null
 * when Defender's record lacks it: a rule that needs what is missing refuses (fails closed).
 */
export function checkDevice(policy: Policy, machineId: string, device: DeviceFacts | undefined): void {
  if (!hasDevicePolicy(policy)) return;
  const change = (setting: string) =>
    `If this device should be allowed, the server's operator must change ${setting}; otherwise handle it in the Defender portal under your own process.`;
  if (!device) {
    throw policyError(
      'device_details_required',
      `Refused by policy: device-group and tag rules are set, but the device's details could not be read (the app lacks Machine.Read.All). ${NOTHING_SENT}`,
      'Grant the app the Machine.Read.All application permission (with admin consent), or remove the device-group and tag rules.',
    );
  }
  const host = device.hostName ?? machineId;
  const lower = (xs: readonly string[]) => xs.map((x) => x.toLowerCase());
  const groupRules = policy.allowDeviceGroups.length + policy.denyDeviceGroups.length > 0;
  const tagRules = policy.allowTags.length + policy.denyTags.length > 0;
  if (groupRules && !device.deviceGroup?.trim()) {
    throw policyError(
      'device_group_unknown',
      `Refused by policy: device-group rules are set, but Defender's record of ${host} names no device group (rbacGroupName), so the rules cannot be checked. ${NOTHING_SENT}`,
      'Assign the device to a device group in the Defender portal, or ask the operator to remove the device-group rules.',
    );
  }
  if (tagRules && device.tags === null) {
    throw policyError(
      'device_tags_unknown',
      `Refused by policy: tag rules are set, but Defender's record of ${host} carries no tag list (machineTags), so the rules cannot be checked. ${NOTHING_SENT}`,
      'Check the device in the Defender portal (and that the app can read devices), or ask the operator to remove the tag rules.',
    );
  }
  const group = device.deviceGroup?.toLowerCase() ?? '';
  const deviceTags = device.tags ?? [];
  const tags = lower(deviceTags);

  if (lower(policy.denyDeviceGroups).includes(group)) {
    throw policyError('MDE_DENY_DEVICE_GROUPS', `Refused by policy: ${host} is in device group "${device.deviceGroup}", which MDE_DENY_DEVICE_GROUPS excludes. ${NOTHING_SENT}`, change('MDE_DENY_DEVICE_GROUPS'));
  }
  const deniedTag = deviceTags.find((t) => lower(policy.denyTags).includes(t.toLowerCase()));
  if (deniedTag) {
    throw policyError('MDE_DENY_TAGS', `Refused by policy: ${host} carries the tag "${deniedTag}", which MDE_DENY_TAGS excludes. ${NOTHING_SENT}`, change('MDE_DENY_TAGS'));
  }
  if (policy.allowDeviceGroups.length > 0 && !lower(policy.allowDeviceGroups).includes(group)) {
    throw policyError(
      'MDE_ALLOW_DEVICE_GROUPS',
      `Refused by policy: ${host} is in device group "${device.deviceGroup ?? '(none)'}", which is not in MDE_ALLOW_DEVICE_GROUPS (${policy.allowDeviceGroups.join(', ')}). ${NOTHING_SENT}`,
      change('MDE_ALLOW_DEVICE_GROUPS'),
    );
  }
  if (policy.allowTags.length > 0 && !tags.some((t) => lower(policy.allowTags).includes(t))) {
    throw policyError(
      'MDE_ALLOW_TAGS',
      `Refused by policy: ${host} carries none of the tags in MDE_ALLOW_TAGS (${policy.allowTags.join(', ')}). ${NOTHING_SENT}`,
      change('MDE_ALLOW_TAGS'),
    );
  }
}
