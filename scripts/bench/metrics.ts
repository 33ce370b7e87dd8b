// What metrics cost a call: the real server (createServer) and a real MCP client over an in-memory
// transport, the real DefenderClient and rate limiter, and a fetch answering at once in the same
// process, so that network noise does not hide a difference of microseconds. Two servers, metrics off
// (the no-op default) and on (prom-client), called in interleaved rounds. Bundled and run by
// scripts/bench.mjs.
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { DefenderClient } from '../../src/defender/client.js';
import { MemoryRateBudget } from '../../src/store/memory.js';
import { silentLogger } from '../../src/log.js';
import { NO_METRICS, type Metrics } from '../../src/metrics/metrics.js';
import { createPrometheusMetrics } from '../../src/metrics/prometheus.js';
import { createServer } from '../../src/server.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

const instantFetch: typeof fetch = async (input, init) => {
  // The device's action history (read before each write): nothing pending.
  if ((init?.method ?? 'GET') === 'GET' && String(input).includes('/api/machineactions')) return new Response('{"value":[]}', { status: 200, headers: { 'Content-Type': 'application/json' } });
  const now = new Date().toISOString();
  const comment = (JSON.parse(String(init?.body ?? '{}')) as { Comment?: string }).Comment;
  const action = { id: randomUUID(), type: 'UnrestrictCodeExecution', requestor: 'bench', requestorComment: comment, status: 'Pending', machineId: DEVICE, computerDnsName: 'bench-host', creationDateTimeUtc: now, lastUpdateDateTimeUtc: now };
  return new Response(JSON.stringify(action), { status: 201, headers: { 'Content-Type': 'application/json' } });
};

async function serverWith(metrics: Metrics) {
  const limiter = new MemoryRateBudget({ perMinute: 1_000_000, perHour: 100_000_000, maxWaitMs: 60_000 });
  const api = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens: { description: 'bench', getToken: async () => 'bench-token', invalidate() {} }, timeoutMs: 5_000, logger: silentLogger, limiter, fetch: instantFetch, metrics });
  const server = createServer({ api, logger: silentLogger, confirmation: { mode: 'auto', skip: true }, metrics });
  const client = new Client({ name: 'bench', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(b), client.connect(a)]);
  return {
    async call() {
      const r = await client.callTool({ name: 'remove_app_restriction', arguments: { machineId: DEVICE, comment: 'INC-1: bench' } });
      if (r.isError) throw new Error(`bench call failed: ${JSON.stringify(r.content)}`);
    },
    close: () => client.close(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function metricsOverhead(calls: number, rounds = 20) {
  const prometheus = createPrometheusMetrics();
  const off = await serverWith(NO_METRICS);
  const on = await serverWith(prometheus);
  for (let i = 0; i < 300; i++) {
    await off.call();
    await on.call();
  }
  const times: { off: number[]; on: number[] } = { off: [], on: [] };
  const perRound = Math.max(1, Math.floor(calls / rounds));
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so neither always runs on a warmer heap.
    const order = r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
    for (const which of order) {
      const s = which === 'off' ? off : on;
      for (let i = 0; i < perRound; i++) {
        const t0 = process.hrtime.bigint();
        await s.call();
        times[which].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  // The instrumentation alone, as one call performs it (one tool call, one confirmation, two Defender
  // requests with their budget waits: the device preview is skipped with the flag, so one here).
  const direct: number[] = [];
  for (let r = 0; r < 50; r++) {
    const n = 2_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      prometheus.budgetWait(0);
      prometheus.defenderRequest('unrestrict', '201', 0.0004);
      prometheus.confirmation('skipped_by_flag');
      prometheus.toolCall('remove_app_restriction', 'submitted', 0.0009);
    }
    direct.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
  }
  const scrapes: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = process.hrtime.bigint();
    await prometheus.scrape();
    scrapes.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await off.close();
  await on.close();
  return { calls: times.off.length, offMedian: median(times.off), onMedian: median(times.on), directPerCall: median(direct), scrapeMedian: median(scrapes) };
}
