/**
 * Scale-out, end to end: three built servers (stdio processes, as three IDE windows or three replicas of
 * one app registration would be) sharing one real redis-server, against the Defender and Entra fakes.
 * What crossed the wire to the fake is the evidence: how many calls, how many POSTs.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, expect, it } from 'vitest';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { CLIENT_SECRET, ENTRY, baseEnv, spawnTracked, startFakes } from '../helpers/process.js';
import { describeWithRedis } from '../helpers/redis-server.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const COMMENT = 'INC-512: cleaned, lifting restriction';
const KEY = randomBytes(32).toString('base64');

type Fakes = Awaited<ReturnType<typeof startFakes>>;
type Replica = Awaited<ReturnType<typeof spawnTracked>>;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function fakes(): Promise<Fakes> {
  const f = await startFakes();
  cleanups.push(() => f.sim.close());
  return f;
}

describeWithRedis('three replicas sharing one Redis', (redis) => {
  /**
   * Three servers of one app registration. Each test uses its own client id, so its budget and locks are
   * its own (keys are namespaced by app registration), as two registrations on one Redis would be.
   */
  async function replicas(
    f: Fakes,
    opts: { env?: Record<string, string>; each?: (i: number) => Record<string, string>; elicit?: 'accept' } = {},
  ): Promise<Replica[]> {
    const env = {
      ...baseEnv(),
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: randomUUID(),
      AZURE_CLIENT_SECRET: CLIENT_SECRET,
      AZURE_AUTHORITY_HOST: f.authorityHost,
      MDE_API_URL: f.apiUrl,
      MDE_REDIS_URL: redis().url,
      MDE_CONFIRMATION_KEY: KEY,
      ...opts.env,
    };
    return Promise.all([0, 1, 2].map((i) => spawnTracked(cleanups, { env: { ...env, ...opts.each?.(i) }, ...(opts.elicit ? { elicit: opts.elicit } : {}) })));
  }
  const listActions = (r: Replica) =>
    r.client.callTool({ name: 'list_machine_actions', arguments: { machineId: RESTRICTED_DEVICE } }) as Promise<CallToolResult>;

  it('one budget: with 10 calls a minute and no waiting, exactly 10 of 30 calls across the replicas reach Defender; the rest are refused with nothing sent', async () => {
    const f = await fakes();
    const servers = await replicas(f, { env: { MDE_RATE_LIMIT_PER_MINUTE: '10', MDE_RATE_LIMIT_MAX_WAIT_MS: '0' } });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => listActions(servers[i % 3]!)));
    expect(f.sim.apiRequests()).toHaveLength(10);
    const refused = results.filter((r) => r.isError);
    expect(refused).toHaveLength(20);
    for (const r of refused) expect(textOf(r)).toMatch(/^Error \(rate_limited\): This server's Defender API budget is spent \(10 calls a minute/);
    // Every replica was refused as well as served: the budget is one, not three of ten.
    const servedBy = [0, 1, 2].map((i) => results.filter((r, j) => j % 3 === i && !r.isError).length);
    expect(servedBy.reduce((a, b) => a + b, 0)).toBe(10);
  });

  it('one token ledger: a token issued by replica A is redeemed once on B and refused as replayed on C; audit records name their replica', async () => {
    const f = await fakes();
    const dir = mkdtempSync(join(tmpdir(), 'mde-replicas-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const names = ['a', 'b', 'c'];
    const [a, b, c] = (await replicas(f, { each: (i) => ({ MDE_AUDIT_LOG: join(dir, `${names[i]}.jsonl`) }) })) as [Replica, Replica, Replica];
    const issued = await a.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const token = (issued.structuredContent as { confirmation: { token: string } }).confirmation.token;
    expect(f.sim.apiRequests('POST')).toHaveLength(0);

    const redeemed = await b.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(redeemed.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
    const replayed = await c.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(replayed.isError).toBe(true);
    expect(textOf(replayed)).toMatch(/already been used/);
    const again = await a.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(textOf(again)).toMatch(/already been used/);
    expect(f.sim.apiRequests('POST')).toHaveLength(1);

    // Each replica appends to its own file, and every record says which process wrote it.
    const pidOf = (r: Replica) => Number(/replica \S+ pid (\d+)/.exec(r.stderr())?.[1]);
    const records = (name: string) => readFileSync(join(dir, `${name}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records('a')[0]).toMatchObject({ event: 'not_sent', confirmation: 'token_issued', replica: { pid: pidOf(a) } });
    expect(records('b').map((r) => r.event)).toEqual(['intent', 'outcome']);
    expect(records('b')[0]).toMatchObject({ confirmation: 'token_redeemed', replica: { pid: pidOf(b) } });
    expect(records('c')[0]).toMatchObject({ event: 'not_sent', tokenRejection: 'replayed', replica: { pid: pidOf(c) } });
    expect(JSON.stringify([records('a'), records('b'), records('c')])).not.toContain(token);
  });

  it('one write per device: three concurrent confirmed calls for one device on three replicas send one POST; the others get that action as already_pending', async () => {
    const f = await fakes();
    // Slow answers keep the first POST in flight while the other replicas arrive.
    f.sim.injectFault({ method: 'POST', path: /unrestrictCodeExecution/ }, { kind: 'delay', ms: 2_500 });
    const servers = await replicas(f, { elicit: 'accept' });
    const results = await Promise.all(servers.map((s) => s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT })));
    expect(f.sim.apiRequests('POST', 'unrestrictCodeExecution')).toHaveLength(1);
    const outcomes = results.map((r) => (r.structuredContent as { outcome: string }).outcome).sort();
    expect(outcomes).toEqual(['already_pending', 'already_pending', 'submitted']);
    const ids = new Set(results.map((r) => (r.structuredContent as { machineAction: { id: string } }).machineAction.id));
    expect(ids.size).toBe(1);
  });

  it('Redis stopped mid-run: calls fail at once with store_unavailable and send nothing; when Redis is back, the replicas recover by themselves', async () => {
    const f = await fakes();
    const servers = await replicas(f);
    expect((await listActions(servers[0]!)).isError).toBeFalsy();
    const before = f.sim.apiRequests().length;

    await redis().stop({ crash: true });
    try {
      const t0 = Date.now();
      const during = await Promise.all(servers.map((s) => listActions(s)));
      expect(Date.now() - t0).toBeLessThan(3_000);
      for (const r of during) {
        expect(r.isError).toBe(true);
        expect(textOf(r)).toMatch(/^Error \(store_unavailable\): The shared state store \(Redis at unix:\/\/.*\) could not be used \([^)]+\), so nothing was sent to Defender/);
        expect(textOf(r)).toMatch(/Next step: Check that Redis is running and reachable at MDE_REDIS_URL/);
      }
      const write = await servers[1]!.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
      expect(textOf(write)).toMatch(/store_unavailable/);
      expect(f.sim.apiRequests()).toHaveLength(before);
    } finally {
      await redis().restart();
    }

    // Back: every replica reconnects by itself (no restart of the servers).
    for (const s of servers) {
      let r = await listActions(s);
      for (let i = 0; i < 40 && r.isError; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        r = await listActions(s);
      }
      expect(r.isError).toBeFalsy();
    }
    expect(servers[0]!.stderr()).toMatch(/Redis at unix:\/\/\S+ is reachable again/);
  });

  it('remote mode: /readyz answers 503 while Redis is away, and 200 again when it is back', async () => {
    const env = { ...baseEnv(), MDE_REDIS_URL: redis().url, MDE_CONFIRMATION_KEY: KEY };
    const child = spawn(process.execPath, [ENTRY, '--simulator', '--transport', 'http', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    let stderr = '';
    const base = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /on (http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`server exited before listening:\n${stderr}`)));
    });
    expect(stderr).toMatch(/state: Redis at unix:\/\//);
    const ready = async () => (await fetch(`${base}/readyz`)).status;
    expect(await ready()).toBe(200);
    await redis().stop({ crash: true });
    try {
      let status = await ready();
      for (let i = 0; i < 40 && status !== 503; i++) status = (await new Promise((r) => setTimeout(r, 50)), await ready());
      expect(status).toBe(503);
    } finally {
      await redis().restart();
    }
    let status = await ready();
    for (let i = 0; i < 60 && status !== 200; i++) status = (await new Promise((r) => setTimeout(r, 100)), await ready());
    expect(status).toBe(200);
  });
});
