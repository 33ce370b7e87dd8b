/** Hidden characters (src/confirmation/characters.ts): found by Unicode property, named by their Unicode names, escaped as JSON and JavaScript do. */
import { describe, expect, it } from 'vitest';
import { describeCodePoint, findHidden } from '../../src/confirmation/characters.js';
import { approvalText } from '../../src/confirmation/render.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

describe('hidden characters, by Unicode property', () => {
  it('names common ones and falls back to the category', () => {
    expect(describeCodePoint(0x2028)).toBe('U+2028 LINE SEPARATOR');
    expect(describeCodePoint(0xe0041)).toBe('U+E0041 (format character)');
    expect(describeCodePoint(0xf0000)).toBe('U+F0000 (private-use character)');
    expect(describeCodePoint(0x378)).toBe('U+0378 (unassigned code point)');
    expect(describeCodePoint(0x1d175)).toBe('U+1D175 (format character)');
    expect(findHidden('ab\uD800c')).toEqual({ description: 'U+D800 (surrogate)', position: 3 });
    expect(findHidden('a\u{1F600}\u200Bb')).toEqual({ description: 'U+200B ZERO WIDTH SPACE', position: 3 });
    expect(findHidden('INC-12: Grüße, 東京, ok')).toBeUndefined();
  });
});
describe('the names of hidden characters are their Unicode names', () => {
  // From the Unicode Character Database (UnicodeData.txt); the fallback is the category.
  const UNICODE_NAMES: [number, string][] = [
    [0x00, 'NULL'], [0x09, 'CHARACTER TABULATION'], [0x0a, 'LINE FEED'], [0x0b, 'LINE TABULATION'], [0x0c, 'FORM FEED'],
    [0x0d, 'CARRIAGE RETURN'], [0x1b, 'ESCAPE'], [0x7f, 'DELETE'], [0x85, 'NEXT LINE'], [0xad, 'SOFT HYPHEN'],
    [0x34f, 'COMBINING GRAPHEME JOINER'], [0x61c, 'ARABIC LETTER MARK'], [0x115f, 'HANGUL CHOSEONG FILLER'],
    [0x1160, 'HANGUL JUNGSEONG FILLER'], [0x180e, 'MONGOLIAN VOWEL SEPARATOR'], [0x200b, 'ZERO WIDTH SPACE'],
    [0x200c, 'ZERO WIDTH NON-JOINER'], [0x200d, 'ZERO WIDTH JOINER'], [0x200e, 'LEFT-TO-RIGHT MARK'], [0x200f, 'RIGHT-TO-LEFT MARK'],
    [0x2028, 'LINE SEPARATOR'], [0x2029, 'PARAGRAPH SEPARATOR'], [0x202a, 'LEFT-TO-RIGHT EMBEDDING'], [0x202b, 'RIGHT-TO-LEFT EMBEDDING'],
    [0x202c, 'POP DIRECTIONAL FORMATTING'], [0x202d, 'LEFT-TO-RIGHT OVERRIDE'], [0x202e, 'RIGHT-TO-LEFT OVERRIDE'], [0x2060, 'WORD JOINER'],
    [0x2061, 'FUNCTION APPLICATION'], [0x2062, 'INVISIBLE TIMES'], [0x2063, 'INVISIBLE SEPARATOR'], [0x2064, 'INVISIBLE PLUS'],
    [0x2066, 'LEFT-TO-RIGHT ISOLATE'], [0x2067, 'RIGHT-TO-LEFT ISOLATE'], [0x2068, 'FIRST STRONG ISOLATE'], [0x2069, 'POP DIRECTIONAL ISOLATE'],
    [0x3164, 'HANGUL FILLER'], [0xfeff, 'ZERO WIDTH NO-BREAK SPACE'], [0xffa0, 'HALFWIDTH HANGUL FILLER'],
    [0xfff9, 'INTERLINEAR ANNOTATION ANCHOR'], [0xfffa, 'INTERLINEAR ANNOTATION SEPARATOR'], [0xfffb, 'INTERLINEAR ANNOTATION TERMINATOR'],
    [0xe0001, 'LANGUAGE TAG'], [0xe007f, 'CANCEL TAG'],
  ];
  it.each(UNICODE_NAMES)('U+%s', (cp, name) => {
    expect(describeCodePoint(cp)).toBe(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} ${name}`);
    expect(findHidden(`a${String.fromCodePoint(cp)}`)).toEqual({ description: describeCodePoint(cp), position: 2 });
  });
  it('falls back to the category, or default-ignorable', () => {
    expect(describeCodePoint(0x01)).toBe('U+0001 (control character)');
    expect(describeCodePoint(0xfe01)).toBe('U+FE01 (default-ignorable character)');
    expect(describeCodePoint(0xdc00)).toBe('U+DC00 (surrogate)');
  });
  it('escapes as JSON and JavaScript do', () => {
    expect(approvalText({ action: 'x', verb: 'V', consequence: 'C', machineId: DEVICE, comment: '\u{e0041}\u0007' }, { machineId: DEVICE, hostName: null, osPlatform: null, osVersion: null, deviceGroup: null, healthStatus: null, lastSeen: null, tags: [] })).toContain('"\\u{e0041}\\u0007"');
  });
});
