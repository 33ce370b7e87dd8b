/** The policy guards' refusals, word for word: the rule, the device, and what the operator must change. */
import { describe, expect, it } from 'vitest';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import { ToolError } from '../../src/errors.js';
import { checkComment, checkDevice, hasDevicePolicy } from '../../src/policy.js';

const ID = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const SENT = 'Nothing was sent to Defender.';
const change = (s: string) => `If this device should be allowed, the server's operator must change ${s}; otherwise handle it in the Defender portal under your own process.`;
const policy = (p: Partial<Policy>): Policy => ({ ...NO_POLICY, ...p });
const device = { hostName: 'ws-1', deviceGroup: 'Finance', tags: ['VIP', 'EU'] };

function refusal(fn: () => void): { kind: string; message: string; nextStep: string; rule: unknown } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ToolError);
    const t = e as ToolError;
    return { kind: t.kind, message: t.message, nextStep: t.nextStep, rule: t.details.rule };
  }
  throw new Error('not refused');
}

describe('checkComment', () => {
  const pattern = { source: '^INC-\\d+', test: (s: string) => /^INC-\d+/.test(s) } as unknown as Policy['commentPattern'];
  it('passes a matching comment and any comment without a pattern; refuses the rest naming the pattern', () => {
    expect(() => checkComment(policy({ commentPattern: pattern }), 'INC-1 ok')).not.toThrow();
    expect(() => checkComment(NO_POLICY, 'anything')).not.toThrow();
    expect(refusal(() => checkComment(policy({ commentPattern: pattern }), 'please'))).toEqual({
      kind: 'policy',
      rule: 'MDE_COMMENT_PATTERN',
      message: `Refused by policy: the comment must match the pattern /^INC-\\d+/ (MDE_COMMENT_PATTERN). ${SENT}`,
      nextStep: 'Call again with a comment that matches, for example one that names the ticket.',
    });
  });
});

describe('checkDevice', () => {
  it('does nothing without device rules, even when the device is unknown', () => {
    expect(hasDevicePolicy(NO_POLICY)).toBe(false);
    expect(() => checkDevice(NO_POLICY, ID, undefined)).not.toThrow();
    for (const p of [{ allowDeviceGroups: ['a'] }, { denyDeviceGroups: ['a'] }, { allowTags: ['a'] }, { denyTags: ['a'] }]) expect(hasDevicePolicy(policy(p))).toBe(true);
  });

  it('fails closed when the details could not be read', () => {
    expect(refusal(() => checkDevice(policy({ denyTags: ['x'] }), ID, undefined))).toEqual({
      kind: 'policy',
      rule: 'device_details_required',
      message: `Refused by policy: device-group and tag rules are set, but the device's details could not be read (the app lacks Machine.Read.All). ${SENT}`,
      nextStep: 'Grant the app the Machine.Read.All application permission (with admin consent), or remove the device-group and tag rules.',
    });
  });

  it('fails closed on a missing group or tag list, naming the device by host name, else by id', () => {
    expect(refusal(() => checkDevice(policy({ allowDeviceGroups: ['Finance'] }), ID, { ...device, deviceGroup: '  ' }))).toEqual({
      kind: 'policy',
      rule: 'device_group_unknown',
      message: `Refused by policy: device-group rules are set, but Defender's record of ws-1 names no device group (rbacGroupName), so the rules cannot be checked. ${SENT}`,
      nextStep: 'Assign the device to a device group in the Defender portal, or ask the operator to remove the device-group rules.',
    });
    expect(refusal(() => checkDevice(policy({ denyTags: ['x'] }), ID, { ...device, hostName: null, tags: null }))).toEqual({
      kind: 'policy',
      rule: 'device_tags_unknown',
      message: `Refused by policy: tag rules are set, but Defender's record of ${ID} carries no tag list (machineTags), so the rules cannot be checked. ${SENT}`,
      nextStep: 'Check the device in the Defender portal (and that the app can read devices), or ask the operator to remove the tag rules.',
    });
    // Without tag rules a missing tag list is no reason to refuse, nor a missing group without group rules.
    expect(() => checkDevice(policy({ allowDeviceGroups: ['finance'] }), ID, { ...device, tags: null })).not.toThrow();
    expect(() => checkDevice(policy({ allowTags: ['vip'] }), ID, { ...device, deviceGroup: null })).not.toThrow();
  });

  it('deny lists, case-insensitively, quoting the group or tag as Defender spells it', () => {
    expect(refusal(() => checkDevice(policy({ denyDeviceGroups: ['FINANCE'] }), ID, device))).toEqual({
      kind: 'policy',
      rule: 'MDE_DENY_DEVICE_GROUPS',
      message: `Refused by policy: ws-1 is in device group "Finance", which MDE_DENY_DEVICE_GROUPS excludes. ${SENT}`,
      nextStep: change('MDE_DENY_DEVICE_GROUPS'),
    });
    expect(refusal(() => checkDevice(policy({ denyTags: ['eu'], allowTags: ['vip'] }), ID, device))).toEqual({
      kind: 'policy',
      rule: 'MDE_DENY_TAGS',
      message: `Refused by policy: ws-1 carries the tag "EU", which MDE_DENY_TAGS excludes. ${SENT}`,
      nextStep: change('MDE_DENY_TAGS'),
    });
    expect(() => checkDevice(policy({ denyDeviceGroups: ['Sales'], denyTags: ['US'] }), ID, device)).not.toThrow();
  });

  it('allow lists, case-insensitively, listing what is allowed', () => {
    expect(refusal(() => checkDevice(policy({ allowDeviceGroups: ['Sales', 'HR'] }), ID, device))).toEqual({
      kind: 'policy',
      rule: 'MDE_ALLOW_DEVICE_GROUPS',
      message: `Refused by policy: ws-1 is in device group "Finance", which is not in MDE_ALLOW_DEVICE_GROUPS (Sales, HR). ${SENT}`,
      nextStep: change('MDE_ALLOW_DEVICE_GROUPS'),
    });
    expect(refusal(() => checkDevice(policy({ allowTags: ['Lab', 'Test'] }), ID, device))).toEqual({
      kind: 'policy',
      rule: 'MDE_ALLOW_TAGS',
      message: `Refused by policy: ws-1 carries none of the tags in MDE_ALLOW_TAGS (Lab, Test). ${SENT}`,
      nextStep: change('MDE_ALLOW_TAGS'),
    });
    expect(() => checkDevice(policy({ allowDeviceGroups: ['finance'], allowTags: ['vip'] }), ID, device)).not.toThrow();
  });
});
