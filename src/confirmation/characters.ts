/**
 * Characters a human cannot see or that break lines: by Unicode property, not a list, so a character
 * nobody thought of is covered too. General categories Cc (control), Cf (format), Co (private use),
 * Cs (surrogate), Cn (unassigned), Zl (line separator), Zp (paragraph separator), and every
 * Default_Ignorable_Code_Point (soft hyphen, fillers, variation selectors, tag characters, ...).
 * Comments containing one are refused; every text shown to a human has them escaped.
 */

/** Category words for a code point without a name in NAMES (Zl and Zp have one member each, both named). */
const CATEGORIES = [
  [/\p{Cc}/u, 'control character'],
  [/\p{Cf}/u, 'format character'],
  [/\p{Co}/u, 'private-use character'],
  [/\p{Cs}/u, 'surrogate'],
  [/\p{Cn}/u, 'unassigned code point'],
] as const;

/** Matches one hidden or line-breaking code point (global: for replace). */
export const HIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

/** Node has no Unicode name table: the common ones by name, the rest by category (`U+E0041 (format character)`). */
const NAMES: Record<number, string> = {
  0x00: 'NULL',
  0x09: 'CHARACTER TABULATION',
  0x0a: 'LINE FEED',
  0x0b: 'LINE TABULATION',
  0x0c: 'FORM FEED',
  0x0d: 'CARRIAGE RETURN',
  0x1b: 'ESCAPE',
  0x7f: 'DELETE',
  0x85: 'NEXT LINE',
  0xad: 'SOFT HYPHEN',
  0x34f: 'COMBINING GRAPHEME JOINER',
  0x61c: 'ARABIC LETTER MARK',
  0x115f: 'HANGUL CHOSEONG FILLER',
  0x1160: 'HANGUL JUNGSEONG FILLER',
  0x180e: 'MONGOLIAN VOWEL SEPARATOR',
  0x200b: 'ZERO WIDTH SPACE',
  0x200c: 'ZERO WIDTH NON-JOINER',
  0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x2028: 'LINE SEPARATOR',
  0x2029: 'PARAGRAPH SEPARATOR',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING',
  0x202b: 'RIGHT-TO-LEFT EMBEDDING',
  0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2060: 'WORD JOINER',
  0x2061: 'FUNCTION APPLICATION',
  0x2062: 'INVISIBLE TIMES',
  0x2063: 'INVISIBLE SEPARATOR',
  0x2064: 'INVISIBLE PLUS',
  0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE',
  0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE',
  0x3164: 'HANGUL FILLER',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE',
  0xffa0: 'HALFWIDTH HANGUL FILLER',
  0xfff9: 'INTERLINEAR ANNOTATION ANCHOR',
  0xfffa: 'INTERLINEAR ANNOTATION SEPARATOR',
  0xfffb: 'INTERLINEAR ANNOTATION TERMINATOR',
  0xe0001: 'LANGUAGE TAG',
  0xe007f: 'CANCEL TAG',
};

const hex = (cp: number) => cp.toString(16).toUpperCase().padStart(4, '0');

/** `U+2028 LINE SEPARATOR`, or `U+E0041 (format character)` when the name is not in the table. */
export function describeCodePoint(cp: number): string {
  const name = NAMES[cp];
  if (name) return `U+${hex(cp)} ${name}`;
  const char = String.fromCodePoint(cp);
  const category = CATEGORIES.find(([re]) => re.test(char));
  // What is left is a Default_Ignorable_Code_Point of another category (a variation selector, a filler).
  return `U+${hex(cp)} (${category ? category[1] : 'default-ignorable character'})`;
}

/** The first hidden or line-breaking character of `text`: its description and 1-based position (in code points). */
export function findHidden(text: string): { description: string; position: number } | undefined {
  let position = 0;
  for (const char of text) {
    position++;
    if (char.match(HIDDEN) !== null) return { description: describeCodePoint(char.codePointAt(0)!), position };
  }
  return undefined;
}

/** One code point as a visible escape, as JSON and JavaScript write it: \u2028, \u{e0041}. */
export function escapeCodePoint(char: string): string {
  const cp = char.codePointAt(0)!;
  const h = cp.toString(16).padStart(4, '0');
  return cp > 0xffff ? `\\u{${h}}` : `\\u${h}`;
}
