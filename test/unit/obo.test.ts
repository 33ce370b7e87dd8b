import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOboTokenSource } from '../../src/auth/obo.js';
import { ToolError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { API_CLIENT_ID, API_SECRET, FakeEntra, SECOND_ANALYST } from '../fakes/entra-id.js';
import { CLIENT_CERT_PLAIN } from '../helpers/process.js';

const SCOPE = 'https://api.securitycenter.microsoft.com/.default';
let entra: FakeEntra;
beforeAll(async () => {
  entra = new FakeEntra();
  await entra.start();
});
afterAll(() => entra.close());

const source = (secret = API_SECRET) =>
  createOboTokenSource({
    tenantId: entra.tenant,
    clientId: API_CLIENT_ID,
    credential: { kind: 'secret', secret },
    authorityHost: entra.authorityHost,
    scope: SCOPE,
    logger: silentLogger,
    timeoutMs: 5_000,
  });

describe('On-Behalf-Of token source', () => {
  it('exchanges the caller\'s token (the assertion) for a Defender token, and caches it per caller', async () => {
    const obo = source();
    const caller = await entra.userToken();
    const before = entra.tokenRequests().length;
    const token = await obo.forAssertion(caller, 'ada').getToken();
    const sent = entra.tokenRequests().slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.form).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      requested_token_use: 'on_behalf_of',
      assertion: caller,
      client_id: API_CLIENT_ID,
      client_secret: API_SECRET,
    });
    expect(sent[0]!.form.scope).toContain(SCOPE);
    expect(token).toBe(entra.oboIssued.at(-1)!.accessToken);
    expect(token).not.toBe(caller);

    // A later request by the same caller (a new per-request provider) is served from MSAL's cache.
    expect(await obo.forAssertion(caller, 'ada').getToken()).toBe(token);
    expect(entra.tokenRequests().length - before).toBe(1);

    // Another analyst gets another token, never the first one's.
    const other = await obo.forAssertion(await entra.userToken({ user: SECOND_ANALYST }), 'bob').getToken();
    expect(other).not.toBe(token);
    expect(entra.oboIssued.at(-1)!.oid).toBe(SECOND_ANALYST.oid);
  });

  it('after invalidate() (Defender said 401) exchanges again instead of using the cache', async () => {
    const obo = source();
    const provider = obo.forAssertion(await entra.userToken(), 'ada');
    const first = await provider.getToken();
    provider.invalidate();
    const before = entra.tokenRequests().length;
    const second = await provider.getToken();
    expect(entra.tokenRequests().length - before).toBe(1);
    expect(second).not.toBe(first);
  });

  it('turns Entra refusals into actionable errors without the assertion in them', async () => {
    const caller = await entra.userToken();
    entra.failObo = { code: 65001, error: 'invalid_grant', description: "The user or administrator has not consented to use the application with ID 'x'." };
    try {
      const error = await source().forAssertion(caller, 'ada').getToken().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ToolError);
      expect((error as ToolError).kind).toBe('authentication');
      expect((error as ToolError).details.aadsts).toBe('AADSTS65001');
      expect((error as ToolError).nextStep).toMatch(/consent/);
      expect(String((error as Error).message)).not.toContain(caller);
    } finally {
      entra.failObo = undefined;
    }
    const wrongSecret = await source('nope').forAssertion(caller, 'ada').getToken().catch((e: unknown) => e);
    expect((wrongSecret as ToolError).details.aadsts).toBe('AADSTS7000215');
  });

  it('exchanges with the app\'s certificate instead of a secret', async () => {
    const withCert = new FakeEntra({ clientCertificatePem: readFileSync(CLIENT_CERT_PLAIN, 'utf8') });
    await withCert.start();
    try {
      const obo = createOboTokenSource({
        tenantId: withCert.tenant,
        clientId: API_CLIENT_ID,
        credential: { kind: 'certificate', path: CLIENT_CERT_PLAIN, password: undefined },
        authorityHost: withCert.authorityHost,
        scope: SCOPE,
        logger: silentLogger,
        timeoutMs: 5_000,
      });
      const caller = await withCert.userToken();
      const token = await obo.forAssertion(caller, 'ada').getToken();
      expect(token).toBe(withCert.oboIssued[0]!.accessToken);
      const form = withCert.tokenRequests()[0]!.form;
      expect(form).toMatchObject({ assertion: caller, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' });
      expect(form.client_secret).toBeUndefined();
    } finally {
      await withCert.close();
    }
  });
});

describe('On-Behalf-Of token source: a bounded memory of callers', () => {
  it('keeps the 1,000 callers used most recently: using one makes it the newest, the least recently used goes first', () => {
    const obo = source();
    const first = obo.forAssertion('assertion-0', 'a0');
    const second = obo.forAssertion('assertion-1', 'a1');
    for (let i = 2; i < 1_000; i++) obo.forAssertion(`assertion-${i}`, `a${i}`);
    expect(obo.forAssertion('assertion-0', 'a0')).toBe(first); // still known (1,000 held), and now the newest
    obo.forAssertion('assertion-1000', 'a1000'); // one more: the least recently used goes, assertion-1
    expect(obo.forAssertion('assertion-0', 'a0')).toBe(first);
    expect(obo.forAssertion('assertion-1', 'a1')).not.toBe(second);
  });

  it('names each caller\'s exchange by who it is for', () => {
    expect(source().forAssertion('assertion-x', 'ada@contoso.com').description).toBe('On-Behalf-Of ada@contoso.com');
  });
});
