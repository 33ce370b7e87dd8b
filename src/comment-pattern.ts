/**
 * MDE_COMMENT_PATTERN, matched in linear time. JavaScript's backtracking engine can take exponential
 * time on a pattern such as `^([A-Za-z0-9]+\s?)*:` with a hostile 30-character comment, freezing every
 * tool; RE2 (re2js, a pure-JavaScript port; no native build) cannot. Backreferences and lookaround are
 * what it gives up: a pattern using them is refused at start with a clear message. Loaded lazily: only a
 * server with a comment pattern pays for the engine.
 */
import { StartupError } from './errors.js';

/** What the policy needs of a pattern (a RegExp has this shape too, which tests use). */
export interface CommentPattern {
  readonly source: string;
  /** True when the pattern matches somewhere in the comment (anchor it with ^...$ to require all of it). */
  test(comment: string): boolean;
}

export async function compileCommentPattern(source: string, setting = 'MDE_COMMENT_PATTERN (--comment-pattern)'): Promise<CommentPattern> {
  const { RE2JS } = await import('re2js');
  let compiled: InstanceType<typeof RE2JS>;
  try {
    compiled = RE2JS.compile(source);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new StartupError([
      `${setting} cannot be used: ${why}. Patterns run on a linear-time engine (RE2 syntax), so a comment can never stall the server: backreferences (\\1) and lookaround ((?=...), (?<=...)) are not available. Rewrite the pattern without them.`,
    ]);
  }
  return { source, test: (comment) => compiled.matcher(comment).find() };
}
