/** The write guard on its own, with fakes: the order of its steps and where it stops. */
import { describe, expect, it } from 'vitest';
import type { AuditRecord, AuditTrail } from '../../src/audit.js';
import { NO_POLICY, type Policy } from '../../src/config.js';
import type { Elicitor } from '../../src/confirmation/confirm.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import type { DefenderApi } from '../../src/defender/client.js';
import { silentLogger } from '../../src/log.js';
import { createWriteGuard, type WriteSpec } from '../../src/tools/write-guard.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const COMMENT = 'INC-1: cleaned';

function setup(opts: { skip?: boolean; elicit?: boolean; policy?: Partial<Policy>; onRead?: () => void } = {}) {
  const steps: string[] = [];
  const records: Omit<AuditRecord, 'time'>[] = [];
  const audit: AuditTrail = { enabled: true, write: async (r) => void records.push(r) };
  const api = {
    getMachine: async (id: string) => {
      steps.push('read_device');
      opts.onRead?.();
      return { id, computerDnsName: 'host-1', rbacGroupName: 'G', machineTags: ['T'] };
    },
  } as unknown as DefenderApi;
  const elicitor: Elicitor = {
    canElicit: () => opts.elicit ?? false,
    elicit: async () => {
      steps.push('prompt');
      return { action: 'accept', content: { confirm: true } };
    },
  };
  const tokens = new ConfirmationTokens();
  const guard = createWriteGuard({
    api,
    audit,
    logger: silentLogger,
    policy: { ...NO_POLICY, ...opts.policy },
    confirmation: { mode: 'auto', skip: opts.skip ?? false, tokens, ledger: tokens.ledger, elicitor },
  });
  const spec = (over: Partial<WriteSpec> = {}): WriteSpec => ({
    tool: 'remove_app_restriction',
    subject: { action: 'unrestrict', machineId: DEVICE, comment: COMMENT },
    describe: async () => {
      steps.push('describe');
      return { action: 'unrestrict', verb: 'Lift', consequence: 'C', machineId: DEVICE, comment: COMMENT };
    },
    confirmationToken: undefined,
    sameArguments: 'machineId and comment',
    execute: async () => {
      steps.push('execute');
      return { result: { content: [{ type: 'text', text: 'sent' }] }, audit: { outcome: 'submitted' } };
    },
    confirmationRequired: ({ token }) => ({ content: [{ type: 'text', text: token }] }),
    ...over,
  });
  return { guard, spec, steps, records, tokens };
}

describe('createWriteGuard', () => {
  it('a call cancelled after it was confirmed sends nothing and writes no intent (skip flag, device read under a device rule)', async () => {
    const controller = new AbortController();
    const x = setup({ skip: true, policy: { denyTags: ['X'] }, onRead: () => controller.abort() });
    await expect(x.guard(x.spec(), { signal: controller.signal })).rejects.toMatchObject({ kind: 'not_confirmed', message: expect.stringMatching(/cancelled/) });
    expect(x.steps).toEqual(['describe', 'read_device']);
    expect(x.records.map((r) => r.event)).toEqual(['not_sent']);
    expect(x.records[0]).toMatchObject({ confirmation: 'skipped_by_flag', reason: 'not_confirmed' });
  });

  it('a call cancelled before anything was read reads nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const x = setup({ elicit: true });
    await expect(x.guard(x.spec(), { signal: controller.signal })).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(x.steps).toEqual([]);
    expect(x.records.map((r) => [r.event, r.confirmation])).toEqual([['not_sent', 'none']]);
  });

  it('runs its steps in order: describe, inspect, device, prompt, intent, execute, outcome', async () => {
    const x = setup({ elicit: true });
    const r = await x.guard(x.spec({ inspect: async () => (x.steps.push('inspect'), { history: 'H' }) }), {});
    expect(r.content[0]).toMatchObject({ text: 'sent' });
    expect(x.steps).toEqual(['describe', 'inspect', 'read_device', 'prompt', 'execute']);
    expect(x.records.map((r) => [r.event, r.confirmation])).toEqual([['intent', 'elicitation_accepted'], ['outcome', 'elicitation_accepted']]);
    expect(x.records[1]).toMatchObject({ outcome: 'submitted', hostName: 'host-1', machineId: DEVICE });
  });

  it('an inspection that settles the call ends it: no device read, no prompt, no write, one not_sent record with the outcome', async () => {
    const x = setup({ elicit: true });
    const r = await x.guard(x.spec({ inspect: async () => ({ settled: { result: { content: [{ type: 'text', text: 'pending' }] }, audit: { outcome: 'already_pending', machineActionId: 'a-1' } } }) }), {});
    expect(r.content[0]).toMatchObject({ text: 'pending' });
    expect(x.steps).toEqual(['describe']);
    expect(x.records).toHaveLength(1);
    expect(x.records[0]).toMatchObject({ event: 'not_sent', reason: 'already_pending', machineActionId: 'a-1' });
  });

  it('a comment the policy refuses and a bad token are refused before describe (nothing read), each recorded', async () => {
    const x = setup({ policy: { commentPattern: /^CHG-/ } });
    await expect(x.guard(x.spec(), {})).rejects.toMatchObject({ kind: 'policy' });
    const y = setup();
    await expect(y.guard(y.spec({ confirmationToken: 'mdeconfirm.v1.bad.sig' }), {})).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect([...x.steps, ...y.steps]).toEqual([]);
    expect(x.records[0]).toMatchObject({ event: 'not_sent', reason: 'MDE_COMMENT_PATTERN' });
    expect(y.records[0]).toMatchObject({ event: 'not_sent', confirmation: 'token_rejected', tokenRejection: 'bad_signature' });
  });

  it('a token checked without the device is checked again once describe names it', async () => {
    const x = setup();
    const token = x.tokens.issue({ action: 'cancel:a', machineId: 'f'.repeat(40), comment: COMMENT }).token;
    const spec = x.spec({
      subject: { action: 'cancel:a', comment: COMMENT, targetActionId: 'a' },
      describe: async () => ({ action: 'cancel:a', verb: 'Cancel', consequence: 'C', machineId: DEVICE, comment: COMMENT }),
      confirmationToken: token,
    });
    await expect(x.guard(spec, {})).rejects.toMatchObject({ message: expect.stringMatching(/different machine/) });
    expect(x.records[0]).toMatchObject({ event: 'not_sent', tokenRejection: 'mismatch', machineId: DEVICE, targetActionId: 'a' });
  });

  it('a client name and version are bounded in the audit record', async () => {
    const x = setup({ skip: true });
    await x.guard(x.spec(), { client: { name: 'n'.repeat(1000), version: '1' } });
    expect(x.records[0]!.client).toEqual({ name: 'n'.repeat(256), version: '1' });
  });
});
