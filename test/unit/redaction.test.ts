/** Secrets redaction: in Defender's error messages (before they are cut), in rendered ToolErrors and in the logger and its sinks. */
import { describe, expect, it } from 'vitest';
import { mapErrorResponse } from '../../src/defender/errors.js';
import { ToolError, renderError } from '../../src/errors.js';
import { createStderrLogger } from '../../src/log.js';

const SECRET = 'Sup3r~S3cret.Value_for-tests-0123456'; // 36 characters

describe('secrets redaction: before anything is cut', () => {
  it('a secret split by the 300-character cut of Defender\'s message leaks no part of it', () => {
    const message = `${'x'.repeat(275)}${SECRET} and more`; // the cut at 300 falls inside the secret
    const error = mapErrorResponse('unrestrict', 400, JSON.stringify({ error: { code: 'BadRequest', message } }), [SECRET]);
    const text = renderError(error, [SECRET]);
    expect(text).not.toContain(SECRET.slice(0, 12));
    expect(text).toContain('[REDACTED]');
  });

  it('a ToolError is rendered with its secrets redacted (message and next step)', () => {
    const text = renderError(new ToolError('upstream', `failed with ${SECRET}`, `retry without ${SECRET}`), [SECRET]);
    expect(text).not.toContain(SECRET);
    expect(text.match(/\[REDACTED\]/g)).toHaveLength(2);
  });

  it('the logger redacts what it writes and what it sends to its sinks', () => {
    const lines: string[] = [];
    const sunk: string[] = [];
    const logger = createStderrLogger({ level: 'debug', secrets: [SECRET], write: (l) => void lines.push(l) });
    logger.addSink!((_level, m) => void sunk.push(m));
    logger.error(`token endpoint said ${SECRET}`);
    logger.debug(`Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl`);
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain('eyJhbGciOiJIUzI1NiJ9');
    expect(lines[0]).toContain('[REDACTED]');
    expect(sunk).toEqual(['token endpoint said [REDACTED]']);
  });
});
