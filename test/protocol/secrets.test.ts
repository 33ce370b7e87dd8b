/**
 * Configured secrets, bearer tokens and JWTs stay out of the audit file, the Defender comment and every
 * result, whichever field brings them (issue 19, break 3). Through a real MCP client against the fake tenant.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlAuditTrail, type AuditRecord } from '../../src/audit.js';
import { CLIENT_SECRET, RESTRICTED_DEVICE, textOf, useHarness } from '../helpers/harness.js';

const harness = useHarness();
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbmFseXN0QGNvbnRvc28uY29tIn0.c2lnbmF0dXJlLWJ5dGVz';

function auditFile(secrets: string[] = []) {
  const path = join(mkdtempSync(join(tmpdir(), 'mde-secrets-')), 'audit.jsonl');
  return { path, trail: new JsonlAuditTrail(path, Date.now, { host: 'h', pid: 1 }, secrets), text: () => readFileSync(path, 'utf8'), read: () => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord) };
}

describe('secrets never reach Defender, the audit trail or a result', () => {
  it('a comment carrying the client secret, a JWT or a bearer token is refused before anything is read, without repeating it', async () => {
    const audit = auditFile([CLIENT_SECRET]);
    const x = await harness({ audit: audit.trail, secrets: [CLIENT_SECRET] });
    for (const comment of [`INC-7: cleaned, secret ${CLIENT_SECRET}`, `INC-7: token ${JWT}`, 'INC-7: Bearer abcdefghijklmnopqrstuvwxyz0123']) {
      const r = await x.call({ machineId: RESTRICTED_DEVICE, comment });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/^Error \(invalid_input\): Refused: the comment carries a configured secret, a bearer token or a JWT/);
      for (const leaked of [CLIENT_SECRET, JWT, 'abcdefghijklmnopqrstuvwxyz0123']) expect(textOf(r)).not.toContain(leaked);
    }
    expect(x.sim.apiRequests()).toHaveLength(0);
    expect(audit.read().map((rec) => [rec.event, rec.reason])).toEqual([
      ['not_sent', 'secret_in_comment'],
      ['not_sent', 'secret_in_comment'],
      ['not_sent', 'secret_in_comment'],
    ]);
    for (const leaked of [CLIENT_SECRET, JWT]) expect(audit.text()).not.toContain(leaked);
    // The word alone is not a token.
    expect((await x.call({ machineId: RESTRICTED_DEVICE, comment: 'INC-7: Bearer of the ticket confirms clean' })).structuredContent).toMatchObject({ outcome: 'confirmation_required' });
  });

  it('a client that declares a secret or a JWT as its name is written [REDACTED] in the audit', async () => {
    const audit = auditFile([CLIENT_SECRET]);
    const x = await harness({ audit: audit.trail, secrets: [CLIENT_SECRET], clientInfo: { name: `agent ${CLIENT_SECRET}`, version: JWT } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: 'INC-7: cleaned' });
    const [record] = audit.read();
    expect(record!.client).toEqual({ name: 'agent [REDACTED]', version: '[REDACTED-JWT]' });
    expect(audit.text()).not.toContain(CLIENT_SECRET);
  });

  it('a device field from Defender carrying a JWT reaches the result [REDACTED-JWT]', async () => {
    const x = await harness({ secrets: [CLIENT_SECRET] });
    const machine = { id: RESTRICTED_DEVICE, computerDnsName: `ws-${JWT}`, osPlatform: 'Windows11', healthStatus: 'Active', rbacGroupName: `G ${CLIENT_SECRET}`, machineTags: [] };
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 200, body: JSON.stringify(machine), headers: { 'content-type': 'application/json' } });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: 'INC-7: cleaned' });
    const shown = JSON.stringify(r);
    expect(shown).not.toContain(JWT);
    expect(shown).not.toContain(CLIENT_SECRET);
    expect((r.structuredContent as { confirmation: { preview: { hostName: string; deviceGroup: string } } }).confirmation.preview).toMatchObject({ hostName: 'ws-[REDACTED-JWT]', deviceGroup: 'G [REDACTED]' });
  });
});
