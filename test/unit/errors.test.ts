import { describe, expect, it } from 'vitest';
import { toAuthenticationError } from '../../src/auth/msal.js';
import { mapErrorResponse, retryAfterMs } from '../../src/defender/errors.js';
import { ToolError, redact, renderError } from '../../src/errors.js';

const body = (code: string, message: string, target = 't-1') => JSON.stringify({ error: { code, message, target } });

describe('mapErrorResponse', () => {
  it('recognises "already in progress" by code or by message', () => {
    expect(mapErrorResponse('unrestrict', 400, body('ActiveRequestAlreadyExists', 'x'))).toMatchObject({ kind: 'upstream', details: { alreadyInProgress: true } });
    expect(mapErrorResponse('unrestrict', 400, body('BadRequest', 'Action is already in progress'))).toMatchObject({ kind: 'upstream', details: { alreadyInProgress: true } });
    expect(mapErrorResponse('unrestrict', 400, body('InvalidRequestBody', 'Request body is incorrect'))).toMatchObject({ kind: 'upstream', details: {} });
  });

  it('names the permission each operation needs on 403', () => {
    const write = mapErrorResponse('unrestrict', 403, body('Forbidden', 'Missing application roles.'));
    expect(write).toMatchObject({ kind: 'permission' });
    expect(write.message).toContain('Machine.RestrictExecution');
    expect(write.nextStep).toMatch(/Grant admin consent/);
    expect(mapErrorResponse('read_machine', 403, '').message).toContain('Machine.Read.All');
  });

  it('maps 404, 5xx and unreadable bodies without leaking them', () => {
    const nf = mapErrorResponse('read_machine', 404, body('ResourceNotFound', 'Machine abc was not found', 'corr-9'));
    expect(nf).toMatchObject({ kind: 'not_found' });
    expect(nf.upstream).toEqual({ status: 404, code: 'ResourceNotFound', target: 'corr-9' });
    const fivexx = mapErrorResponse('unrestrict', 502, '<html>bad gateway</html>');
    expect(fivexx.message).toBe('The Defender API failed (HTTP 502).');
    expect(renderError(fivexx)).not.toContain('<html>');
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, and backs off exponentially without a header', () => {
    expect(retryAfterMs('12', 0, 0)).toBe(12_000);
    expect(retryAfterMs('0.5', 0, 0)).toBe(500);
    expect(retryAfterMs(new Date(Date.UTC(2026, 0, 1, 0, 0, 30)).toUTCString(), 0, Date.UTC(2026, 0, 1))).toBe(30_000);
    expect([0, 1, 2].map((a) => retryAfterMs(null, a, 0))).toEqual([1000, 2000, 4000]);
    expect(retryAfterMs('soon', 1, 0)).toBe(2000);
  });
});

describe('renderError and redact', () => {
  it('says what happened, the ids support needs, and what to do next', () => {
    const text = renderError(new ToolError('permission', 'No.', 'Grant it.', { status: 403, code: 'Forbidden', target: 'abc' }));
    expect(text).toBe('Error (permission): No.\nDefender API: HTTP 403, code Forbidden, correlation id abc.\nNext step: Grant it.');
  });

  it('removes secrets, bearer tokens and JWTs from any text', () => {
    const text = redact('secret=hunter22 Authorization: Bearer abc.def-ghi jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', ['hunter22']);
    expect(text).not.toContain('hunter22');
    expect(text).not.toContain('abc.def-ghi');
    expect(text).not.toContain('eyJhbGciOiJIUzI1NiJ9');
    expect(renderError(new Error('boom hunter22'), ['hunter22'])).not.toContain('hunter22');
  });
});

describe('toAuthenticationError', () => {
  it('names the AADSTS code and a fix, without echoing anything else', () => {
    const e = toAuthenticationError(
      { errorCode: 'invalid_client', errorMessage: 'AADSTS7000215: Invalid client secret provided. Trace ID: 1 Correlation ID: 2' },
      'https://login.microsoftonline.com',
    );
    expect(e.details.aadsts).toBe('AADSTS7000215');
    expect(e.message).toBe('Entra ID refused the sign-in (AADSTS7000215) [invalid_client]: Invalid client secret provided.');
    expect(e.nextStep).toMatch(/AZURE_CLIENT_SECRET/);
  });

  it('tells a network failure apart from a refusal', () => {
    const e = toAuthenticationError({ errorCode: 'network_error', errorMessage: 'connect ECONNREFUSED 127.0.0.1:1' }, 'https://127.0.0.1:1');
    expect(e.message).toMatch(/Could not reach the Entra ID token endpoint/);
  });
});
