import { describe, expect, it } from 'vitest';
import { displayName, displayValue, principalKey, type Caller } from '../../src/auth/caller.js';

const USER: Caller = { kind: 'user', oid: '11111111-2222-4333-8444-555555555555', tid: 'tenant-1', preferredUsername: 'ada@contoso.com', name: 'Ada', token: 't', expiresAt: 1 };
const APP: Caller = { kind: 'app', appId: 'app-1', oid: '99999999-8888-4777-8666-555555555555', tid: 'tenant-1', token: 't', expiresAt: 1 };

describe('who is calling', () => {
  it('keys a principal by kind, tenant and object id; every anonymous caller is one principal', () => {
    expect(principalKey(USER)).toBe('user:tenant-1:11111111-2222-4333-8444-555555555555');
    expect(principalKey(APP)).toBe('app:tenant-1:99999999-8888-4777-8666-555555555555');
    expect(principalKey({ kind: 'anonymous' })).toBe('anonymous');
  });

  it('names a user by sign-in name, else object id; an app by its client id', () => {
    expect(displayName(USER)).toBe('ada@contoso.com');
    expect(displayName({ ...USER, preferredUsername: undefined } as Caller)).toBe('11111111-2222-4333-8444-555555555555');
    expect(displayName(APP)).toBe('app app-1');
    expect(displayName({ kind: 'anonymous' })).toBe('anonymous');
  });

  it('shows a value a caller chose without control, format or line separator characters, trimmed, at most 256 characters', () => {
    expect(displayValue(5)).toBeUndefined();
    expect(displayValue(['Ada'])).toBeUndefined();
    expect(displayValue('  Ada\\u0000\u0007 Analyst\u202e\u2028\n ')).toBe('Ada\\u0000 Analyst');
    expect(displayValue('\u202e\u200b \t')).toBeUndefined();
    expect(displayValue('')).toBeUndefined();
    const long = `${'é'.repeat(255)}😀😀`;
    expect(displayValue(long)).toBe(`${'é'.repeat(255)}😀`); // cut by characters, never inside a surrogate pair
    expect(displayValue(`${'a'.repeat(255)} b`)).toBe('a'.repeat(255)); // trimmed again after the cut
    expect(displayValue(`  ${'a'.repeat(256)}`)).toBe('a'.repeat(256)); // and before it: leading spaces do not count
  });
});
