/** Device rules (checkDevice in src/policy.ts, list settings in src/config.ts): case-insensitive tags and groups, failing closed on missing fields, JSON-array lists. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import { checkDevice } from '../../src/policy.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

describe('device rules', () => {
  const policy = (p: Partial<Policy>): Policy => ({ ...NO_POLICY, ...p });
  const device = { hostName: 'h', deviceGroup: 'Finance', tags: ['Production'] };
  it('compare deny-tags and groups whatever the case', () => {
    expect(() => checkDevice(policy({ denyTags: ['production'] }), DEVICE, device)).toThrow(/MDE_DENY_TAGS/);
    expect(() => checkDevice(policy({ denyTags: ['PRODUCTION'] }), DEVICE, { ...device, tags: ['production'] })).toThrow(/MDE_DENY_TAGS/);
    expect(() => checkDevice(policy({ denyDeviceGroups: ['FINANCE'] }), DEVICE, device)).toThrow(/MDE_DENY_DEVICE_GROUPS/);
    expect(() => checkDevice(policy({ allowTags: ['PRODUCTION'] }), DEVICE, device)).not.toThrow();
    expect(() => checkDevice(policy({ allowDeviceGroups: ['finance'] }), DEVICE, device)).not.toThrow();
  });
  it('fail closed when the record lacks what a rule needs, and only then', () => {
    expect(() => checkDevice(policy({ denyDeviceGroups: ['X'] }), DEVICE, { ...device, deviceGroup: null })).toThrow(/names no device group/);
    expect(() => checkDevice(policy({ allowDeviceGroups: ['X'] }), DEVICE, { ...device, deviceGroup: ' ' })).toThrow(/names no device group/);
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, tags: null })).toThrow(/carries no tag list/);
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, deviceGroup: null })).not.toThrow();
    expect(() => checkDevice(policy({ denyDeviceGroups: ['X'] }), DEVICE, { ...device, tags: null })).not.toThrow();
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, tags: [] })).not.toThrow();
  });
  it('lists take a JSON array for names that contain a comma', () => {
    const LIVE = { AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's' };
    const parsed = parseConfig([], { ...LIVE, MDE_DENY_DEVICE_GROUPS: '["Finance, EMEA", " HR "]', MDE_ALLOW_TAGS: 'a, b' });
    expect(parsed.kind === 'run' && parsed.config.policy.denyDeviceGroups).toEqual(['Finance, EMEA', 'HR']);
    expect(parsed.kind === 'run' && parsed.config.policy.allowTags).toEqual(['a', 'b']);
    expect(() => parseConfig([], { ...LIVE, MDE_DENY_TAGS: '["unclosed' })).toThrow(/MDE_DENY_TAGS.*JSON array/s);
    expect(() => parseConfig([], { ...LIVE, MDE_DENY_TAGS: '[1, 2]' })).toThrow(/JSON array of strings/);
  });
});
