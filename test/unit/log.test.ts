import { describe, expect, it } from 'vitest';
import { createStderrLogger } from '../../src/log.js';
import { NO_METRICS, outcomeOf } from '../../src/metrics/metrics.js';

const SECRET = 'Sup3r~S3cret.Value';

describe('the stderr logger', () => {
  it('writes human-readable lines by default', () => {
    const lines: string[] = [];
    const logger = createStderrLogger({ write: (l) => void lines.push(l), secrets: [SECRET] });
    logger.info(`signed in with ${SECRET}`);
    expect(lines).toEqual(['[mde-app-restriction-mcp] info: signed in with [REDACTED]\n']);
  });

  it('json: one object per line with time, level, message and the call\'s fields, redacted alike', () => {
    const lines: string[] = [];
    let fields: Record<string, unknown> | undefined = { requestId: 7, tool: 'remove_app_restriction', user: 'ada@contoso.com', session: 'abcd1234' };
    const logger = createStderrLogger({ write: (l) => void lines.push(l), secrets: [SECRET], format: 'json', fields: () => fields, level: 'info' });
    logger.warning(`two\nlines, ${SECRET}, Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.sig`);
    fields = undefined;
    logger.info('outside a call');
    logger.debug('below the level');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l.endsWith('\n') && !l.slice(0, -1).includes('\n')).toBe(true);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      level: 'warning',
      message: 'two\nlines, [REDACTED], Bearer [REDACTED]',
      requestId: 7,
      tool: 'remove_app_restriction',
      user: 'ada@contoso.com',
      session: 'abcd1234',
    });
    expect(Object.keys(second!)).toEqual(['time', 'level', 'message']);
    expect(lines.join('')).not.toContain(SECRET);
  });
});

describe('metrics off', () => {
  it('every method of NO_METRICS is a no-op', () => {
    for (const f of Object.values(NO_METRICS)) expect((f as () => unknown)()).toBeUndefined();
  });

  it('names a call\'s outcome from its result, never from free text', () => {
    expect(outcomeOf({ structuredContent: { outcome: 'approval_pending' } })).toBe('approval_pending');
    expect(outcomeOf({ structuredContent: { outcome: 'Machine 1e5b… lifted by Ada' } })).toBe('ok');
    expect(outcomeOf({ isError: true })).toBe('error');
    expect(outcomeOf({})).toBe('ok');
  });
});
