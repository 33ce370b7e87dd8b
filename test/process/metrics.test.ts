/**
 * The built server with metrics on, as an operator runs it: over stdio and over HTTP, MDE_METRICS_PORT=0
 * picks a port the start-up output names, /metrics answers on loopback with the calls made, and
 * MDE_LOG_FORMAT=json turns every stderr line into one JSON object. prom-client is a lazy chunk: nothing
 * the entry loads at start imports it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { ENTRY, baseEnv, spawnTracked } from '../helpers/process.js';
import { scrape, valueOf } from '../helpers/scrape.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const metricsUrl = (stderr: string) => stderr.match(/Metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/)?.[1];

async function until<T>(read: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('metrics and JSON logs, built server', () => {
  it('stdio: serves /metrics on loopback with the calls made; JSON log lines name the call', async () => {
    const server = await spawnTracked(cleanups, {
      args: ['--simulator', '--dangerously-skip-confirmation'],
      env: { ...baseEnv(), MDE_METRICS_PORT: '0', MDE_LOG_FORMAT: 'json' },
    });
    const lineText = () => server.stderr();
    const jsonLines = () =>
      lineText()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const url = await until(() => jsonLines().map((l) => metricsUrl(String(l.message))).find(Boolean), 'the metrics line');

    const done = await server.call({ machineId: RESTRICTED_DEVICE, comment: 'INC-9: metrics over stdio' });
    expect(done.structuredContent, textOf(done)).toMatchObject({ outcome: 'submitted', confirmedBy: 'skipped' });
    const { samples } = await scrape(url);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'remove_app_restriction', outcome: 'submitted' })).toBe(1);
    expect(valueOf(samples, 'mde_confirmations_total', { path: 'skipped_by_flag' })).toBe(1);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: '201' })).toBe(1);
    expect(valueOf(samples, 'mde_budget_limit', { window: 'minute' })).toBe(100);
    expect(valueOf(samples, 'mde_budget_used', { window: 'hour' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const lines = jsonLines();
    for (const l of lines) expect(Object.keys(l).slice(0, 3)).toEqual(['time', 'level', 'message']);
    const skipped = lines.find((l) => String(l.message).startsWith('Confirmation skipped'));
    expect(skipped).toMatchObject({ level: 'warning', tool: 'remove_app_restriction', requestId: expect.anything() });
    expect(skipped).not.toHaveProperty('user'); // stdio: one identity, the app's own
    expect(lines.find((l) => String(l.message).includes('on stdio'))).not.toHaveProperty('tool');
  });

  it('HTTP: the same metrics listener, counting open sessions', async () => {
    const child = spawn(process.execPath, [ENTRY, '--simulator', '--transport', 'http', '--port', '0', '--metrics-port', '0'], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    const mcpUrl = await until(() => stderr.match(/on (http:\/\/127\.0\.0\.1:\d+\/mcp)/)?.[1], 'the endpoint line');
    const url = await until(() => metricsUrl(stderr), 'the metrics line');
    expect(stderr).toMatch(/^\[mde-app-restriction-mcp\] info: /m); // text lines by default

    const client = new Client({ name: 'metrics-http', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));
    cleanups.push(() => client.close());
    await client.callTool({ name: 'find_machine', arguments: { name: 'finance-ws-017' } });
    const { samples } = await scrape(url);
    expect(valueOf(samples, 'mde_http_sessions_open')).toBe(1);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'find_machine', outcome: 'ok' })).toBe(1);
  });

  it('keeps prom-client out of what the entry loads at start (a lazy chunk)', () => {
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      // Static imports only: `import(...)` chunks load on demand.
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:^|[;\s}])import\s*(?:[\w${},\s*]+from\s*)?["'](\.[^"']+)["']/g)) walk(join(dirname(file), m[1]!));
    };
    walk(ENTRY);
    expect(seen.size).toBeGreaterThan(1); // the walk follows the entry's static chunks
    for (const file of seen) expect(readFileSync(file, 'utf8'), file).not.toMatch(/mde_tool_calls_total|collectDefaultMetrics|process_cpu_user_seconds_total/);
  });
});
