/** The comment pattern (src/comment-pattern.ts): linear-time matching, unanchored semantics, and refusal at start of what a linear-time engine cannot run. */
import { describe, expect, it } from 'vitest';
import { compileCommentPattern } from '../../src/comment-pattern.js';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import { StartupError } from '../../src/errors.js';
import { checkComment } from '../../src/policy.js';

describe('comment pattern: linear time, semantics said', () => {
  it('a hostile 30-character comment against ^([A-Za-z0-9]+\\s?)*: is answered within 100 ms', async () => {
    const pattern = await compileCommentPattern('^([A-Za-z0-9]+\\s?)*:');
    const policy: Policy = { ...NO_POLICY, commentPattern: pattern };
    const hostile = `${'a'.repeat(29)}!`;
    const started = performance.now();
    expect(() => checkComment(policy, hostile)).toThrow(/must match the pattern/);
    expect(performance.now() - started).toBeLessThan(100);
    expect(() => checkComment(policy, 'INC 42 done: ok')).not.toThrow();
  });

  it('matches part of the comment unless anchored', async () => {
    expect((await compileCommentPattern('INC-\\d+')).test('NOT-AN-INC-0')).toBe(true);
    const anchored = await compileCommentPattern('^INC-\\d+: .+$');
    expect(anchored.test('NOT-AN-INC-0')).toBe(false);
    expect(anchored.test('INC-42: re-imaged')).toBe(true);
  });

  it('refuses at start what a linear-time engine cannot run, naming the setting', async () => {
    await expect(compileCommentPattern('(a)\\1')).rejects.toBeInstanceOf(StartupError);
    await expect(compileCommentPattern('(?<=INC)-\\d+')).rejects.toThrow(/MDE_COMMENT_PATTERN.*backreferences/s);
  });
});
