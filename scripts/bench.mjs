#!/usr/bin/env node
// `npm run bench` (builds first): cold start, per-call overhead, memory, token reuse and rate budget
// efficiency, each the median of many runs, ratios measured in the same run. Prints a Markdown report;
// `npm run bench -- --write` also writes it to BENCHMARKS.md. Everything runs on loopback.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { cpus, totalmem, platform, release, arch, tmpdir } from 'node:os';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { build } from 'esbuild';
import { directRequests as directFrom } from './bench/direct.mjs';
import { httpBench } from './bench/http.mjs';

const { values: opts } = parseArgs({
  options: {
    write: { type: 'boolean', default: false },
    'cold-runs': { type: 'string', default: '30' },
    calls: { type: 'string', default: '1000' },
    sessions: { type: 'string', default: '200' },
    // Three replicas draining Defender's real budget take two minutes of real time.
    'drain-calls': { type: 'string', default: '300' },
    'skip-drain': { type: 'boolean', default: false },
    // `--only http`: just the remote mode figures, printed (quick to rerun while working on the HTTP path).
    only: { type: 'string' },
  },
});
if (opts.only !== undefined && opts.only !== 'http') throw new Error(`--only takes "http", not "${opts.only}".`);
const COLD_RUNS = Number(opts['cold-runs']);
const CALLS = Number(opts.calls);
const SESSIONS = Number(opts.sessions);
const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = (name) => `${root}test/fixtures/tls/${name}`;
const ENTRY = `${root}dist/cli.js`;
const MINIMAL = `${root}scripts/bench/minimal-server.mjs`;
const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
mkdirSync(`${root}node_modules/.cache/mde-bench`, { recursive: true });

const median = (xs) => quantile(xs, 0.5);
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
const ms = (x) => `${x.toFixed(2)} ms`;
const log = (m) => process.stderr.write(`${m}\n`);

// ---- cold start ------------------------------------------------------------------------------------

const INIT = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })}\n`;
function spawnToInitialize(args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
    const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e6;
    child.on('error', reject);
    if (args[0] === '-e') {
      child.on('exit', () => resolve(elapsed()));
      return;
    }
    child.stdin.write(INIT);
    child.stdout.once('data', () => {
      const t = elapsed();
      child.kill();
      resolve(t);
    });
  });
}

async function coldStart() {
  log(`cold start: ${COLD_RUNS} runs each, interleaved`);
  // For a like-for-like view, the same minimal server bundled the way this server ships.
  const minimalBundled = `${root}node_modules/.cache/mde-bench/minimal-server.bundled.mjs`;
  await build({ entryPoints: [MINIMAL], outfile: minimalBundled, bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
  // Live configuration with placeholder credentials: nothing signs in or touches the network at start.
  const env = { PATH: process.env.PATH ?? '', AZURE_TENANT_ID: 'bench.onmicrosoft.com', AZURE_CLIENT_ID: 'bench-client', AZURE_CLIENT_SECRET: 'bench-secret' };
  const subjects = {
    'node -e 0': ['-e', '0'],
    'minimal SDK server (1 tool)': [MINIMAL],
    'minimal SDK server, bundled': [minimalBundled],
    'mde-app-restriction-mcp': [ENTRY],
    // Metrics on: prom-client's chunk is loaded and the listener bound before the server answers.
    'mde-app-restriction-mcp, metrics on': [ENTRY, '--metrics-port', '0'],
  };
  const times = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
  for (let i = 0; i < COLD_RUNS + 2; i++) {
    for (const [name, args] of Object.entries(subjects)) {
      const t = await spawnToInitialize(args, env);
      if (i >= 2) times[name].push(t); // two warm-up rounds (file cache)
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

// ---- fakes answering instantly ------------------------------------------------------------------------

async function startFakes() {
  let tokenRequests = 0;
  const api = createHttpServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      // The device's action history (read before each write since the hardening): nothing pending.
      if (req.method === 'GET' && req.url.startsWith('/api/machineactions')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"value":[]}');
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      const now = new Date().toISOString();
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          id: randomUUID(),
          type: 'UnrestrictCodeExecution',
          requestor: 'bench',
          requestorComment: body.Comment,
          status: 'Pending',
          machineId: DEVICE,
          computerDnsName: 'bench-host',
          creationDateTimeUtc: now,
          lastUpdateDateTimeUtc: now,
        }),
      );
    });
  });
  const entra = createHttpsServer({ key: readFileSync(fixture('server.key')), cert: readFileSync(fixture('server.pem')) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      tokenRequests++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token_type: 'Bearer', expires_in: 3599, access_token: `bench-token-${randomUUID()}` }));
    });
  });
  await Promise.all([new Promise((r) => api.listen(0, '127.0.0.1', r)), new Promise((r) => entra.listen(0, '127.0.0.1', r))]);
  return {
    apiUrl: `http://127.0.0.1:${api.address().port}`,
    authorityHost: `https://127.0.0.1:${entra.address().port}`,
    tokenRequests: () => tokenRequests,
    close: () => Promise.all([new Promise((r) => api.close(r)), new Promise((r) => entra.close(r))]),
  };
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

async function connectServer(fakes, nodeArgs = []) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...nodeArgs, ENTRY, '--dangerously-skip-confirmation'],
    env: {
      PATH: process.env.PATH ?? '',
      NODE_EXTRA_CA_CERTS: fixture('ca.pem'),
      AZURE_TENANT_ID: 'bench.onmicrosoft.com',
      AZURE_CLIENT_ID: 'bench-client',
      AZURE_CLIENT_SECRET: 'bench-secret',
      AZURE_AUTHORITY_HOST: fakes.authorityHost,
      MDE_API_URL: fakes.apiUrl,
      // The budget itself is measured separately; here it must not throttle the loop.
      MDE_RATE_LIMIT_PER_MINUTE: '1000000',
      MDE_RATE_LIMIT_PER_HOUR: '100000000',
    },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(transport);
  const call = async () => {
    const r = await client.callTool({ name: 'remove_app_restriction', arguments: { machineId: DEVICE, comment: 'INC-1: bench' } });
    if (r.isError) throw new Error(`bench call failed: ${r.content[0].text}`);
    return r;
  };
  return { client, call, pid: transport.pid };
}

const directRequests = (fakes, n) => directFrom(fakes.apiUrl, DEVICE, n);

/**
 * The same requests made from another process, as the server makes them: the fakes live in the bench
 * process, so the direct figure never pays for waking a second process, and the server's requests do.
 * Reported beside the overhead for context; the overhead itself is measured against the direct figure.
 */
async function directFromOtherProcess(fakes, n) {
  const child = spawn(process.execPath, [`${root}scripts/bench/direct.mjs`, fakes.apiUrl, DEVICE, String(n)], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  const exitCode = await new Promise((r) => child.on('exit', r));
  if (exitCode !== 0) throw new Error(`the direct requests from another process failed (exit ${exitCode})`);
  return median(JSON.parse(out));
}

async function perCall(fakes) {
  log(`per-call overhead: ${CALLS} calls through the server, ${CALLS} direct requests`);
  const { client, call, pid } = await connectServer(fakes);
  const rssStart = rssMb(pid);

  await call(); // signs in once
  const roundTrips = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    roundTrips.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const rssAfter1000 = rssMb(pid);
  for (let i = 0; i < CALLS; i++) await call();
  const rssAfter2000 = rssMb(pid);
  const tokenRequests = fakes.tokenRequests();
  await client.close();

  const direct = await directRequests(fakes, CALLS);
  // The same loop with V8's old space capped: if calls leaked, RSS would climb or the process would die;
  // flat figures mean the default run's growth is only V8 collecting lazily.
  const capped = await connectServer(fakes, ['--max-old-space-size=32']);
  await capped.call();
  const cappedRss = [];
  for (let batch = 0; batch < 5; batch++) {
    for (let i = 0; i < CALLS; i++) await capped.call();
    cappedRss.push(rssMb(capped.pid));
  }
  await capped.client.close();
  return {
    cappedRss,
    roundTripMedian: median(roundTrips),
    roundTripP99: quantile(roundTrips, 0.99),
    directMedian: median(direct),
    rssStart,
    rssAfter1000,
    rssAfter2000,
    tokenRequests,
    calls: 2 * CALLS + 1,
  };
}

async function metricsCost() {
  log(`metrics: ${CALLS * 4} in-process calls, metrics off and on, interleaved`);
  const out = `${root}node_modules/.cache/mde-bench/metrics.mjs`;
  await build({ entryPoints: [`${root}scripts/bench/metrics.ts`], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
  const { metricsOverhead } = await import(pathToFileURL(out).href);
  return metricsOverhead(CALLS * 4);
}

async function rateBudget() {
  log('rate budget: 2,000 calls on a fake clock against the simulator');
  const out = `${root}node_modules/.cache/mde-bench/rate-budget.mjs`;
  await build({ entryPoints: [`${root}scripts/bench/rate-budget.ts`], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
  const { rateBudget: run } = await import(pathToFileURL(out).href);
  return run(2000);
}

// ---- several replicas through Redis ---------------------------------------------------------------------

/** A throwaway redis-server on a loopback port and a Unix socket, no persistence; undefined if not installed. */
async function startRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const probe = createNetServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const dir = mkdtempSync(join(tmpdir(), 'mde-bench-redis-'));
  const socket = join(dir, 'redis.sock');
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 100));
  return {
    tcpUrl: `redis://127.0.0.1:${port}`,
    socketUrl: `unix://${socket}`,
    version: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function replicasBench() {
  const redis = await startRedis();
  if (!redis) {
    log('replicas: skipped, redis-server is not installed (apt-get update && apt-get install -y redis-server)');
    return undefined;
  }
  try {
    const out = `${root}node_modules/.cache/mde-bench/replicas.mjs`;
    await build({ entryPoints: [`${root}scripts/bench/replicas.ts`], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
    const bench = await import(pathToFileURL(out).href);
    log(`replicas: store cost per write, ${CALLS} rounds, memory vs Redis over TCP loopback and a Unix socket`);
    const tcp = await bench.storeCost(redis.tcpUrl, CALLS);
    const unix = await bench.storeCost(redis.socketUrl, CALLS);
    let drained;
    if (!opts['skip-drain']) {
      log(`replicas: three replicas draining ${opts['drain-calls']} calls against the real budget (about two minutes)`);
      drained = await bench.drain(redis.tcpUrl, Number(opts['drain-calls']), log);
    }
    return { version: redis.version, tcp, unix, drained };
  } finally {
    await redis.stop();
  }
}

// ---- report ---------------------------------------------------------------------------------------------

/** Remote mode's figures, and the direct requests from another process that put them in context. */
async function remoteFigures(fakes) {
  const remote = await httpBench({ entry: ENTRY, fixture, apiUrl: fakes.apiUrl, direct: (n) => directRequests(fakes, n), calls: CALLS, sessions: SESSIONS, log });
  log(`direct requests from another process: ${CALLS}`);
  return { remote, otherProcess: await directFromOtherProcess(fakes, CALLS) };
}

if (opts.only === 'http') {
  const fakes = await startFakes();
  const { remote, otherProcess } = await remoteFigures(fakes);
  await fakes.close();
  process.stdout.write(`${remoteReport(remote, otherProcess).join('\n')}\n`);
  process.exit(0);
}

const cold = await coldStart();
const fakes = await startFakes();
const call = await perCall(fakes);
const { remote, otherProcess } = await remoteFigures(fakes);
await fakes.close();
const budget = await rateBudget();
const metrics = await metricsCost();
const replicas = await replicasBench();

const ours = cold['mde-app-restriction-mcp'];
const minimal = cold['minimal SDK server (1 tool)'];
const nodeOnly = cold['node -e 0'];
const cpu = cpus();
const lines = [
  '# Benchmarks',
  '',
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu[0]?.model ?? 'unknown CPU'} (${cpu.length} cores), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()} ${arch()}, Node ${process.version}.`,
  'Rerun with `npm run bench` (prints this report; `npm run bench -- --write` rewrites this file). Every figure is a median of many runs unless it says otherwise; ratios come from the same run.',
  '',
  '## Cold start (spawn to `initialize` response)',
  '',
  '| Process | Median |',
  '|---|---|',
  `| \`node -e 0\` (spawn to exit) | ${ms(nodeOnly)} |`,
  `| minimal server on the same MCP SDK, one trivial tool | ${ms(minimal)} |`,
  `| the same minimal server, bundled and minified like this one | ${ms(cold['minimal SDK server, bundled'])} |`,
  `| mde-app-restriction-mcp (bundled \`dist/cli.js\`, live configuration) | ${ms(ours)} |`,
  `| the same with metrics on (\`--metrics-port 0\`: prom-client loaded, listener bound) | ${ms(cold['mde-app-restriction-mcp, metrics on'])} |`,
  '',
  `Ratio to the minimal SDK server: **${(ours / minimal).toFixed(2)}** (target at most 1.0). Ratio to \`node -e 0\`: ${(ours / nodeOnly).toFixed(2)}. ` +
    `Ratio to the bundled minimal server: ${(ours / cold['minimal SDK server, bundled']).toFixed(2)} (the rest is this server's own code: five tools' schemas, configuration, the confirmation gate). ${COLD_RUNS} runs each, interleaved, after two warm-up rounds.`,
  '',
  '## Per call (`remove_app_restriction`, confirmation skipped by flag, fake answering instantly)',
  '',
  '| Figure | Value |',
  '|---|---|',
  `| Round trip through the server, median | ${ms(call.roundTripMedian)} |`,
  `| Round trip through the server, p99 | ${ms(call.roundTripP99)} |`,
  `| The same Defender requests made directly (the history GET and the POST), median | ${ms(call.directMedian)} |`,
  `| **Overhead, median** (round trip median minus direct median) | **${ms(call.roundTripMedian - call.directMedian)}** (target under 2 ms) |`,
  `| Overhead, p99 (round trip p99 minus direct median) | ${ms(call.roundTripP99 - call.directMedian)} |`,
  `| For context: the same Defender requests made from another process, as the server makes them, median | ${ms(otherProcess)} (the direct figure above is made in the process that runs the fakes) |`,
  '',
  '## Memory and token reuse',
  '',
  '| Figure | Value |',
  '|---|---|',
  `| Resident set size after start (initialized; no call, no sign-in yet) | ${call.rssStart.toFixed(1)} MiB |`,
  `| after ${CALLS + 1} calls (the first one signs in) | ${call.rssAfter1000.toFixed(1)} MiB |`,
  `| after ${2 * CALLS + 1} calls | ${call.rssAfter2000.toFixed(1)} MiB (growth over the last ${CALLS}: ${(call.rssAfter2000 - call.rssAfter1000).toFixed(1)} MiB) |`,
  `| Same loop in a second server with V8's old space capped at 32 MiB (\`--max-old-space-size=32\`), RSS after each further ${CALLS} calls | ${call.cappedRss.map((x) => x.toFixed(1)).join(', ')} MiB |`,
  `| Token requests for ${call.calls} calls (first server) | **${call.tokenRequests}** |`,
  '',
  ...remoteReport(remote, otherProcess),
  '## Metrics (`MDE_METRICS_PORT`; in-process server and client, Defender answering in the same process)',
  '',
  '| Figure | Value |',
  '|---|---|',
  `| Per-call latency, metrics off (the no-op default), median of ${metrics.calls} | ${ms(metrics.offMedian)} |`,
  `| Per-call latency, metrics on (prom-client), median of ${metrics.calls} | ${ms(metrics.onMedian)} |`,
  `| **Overhead of metrics per call, median** | **${(metrics.onMedian - metrics.offMedian).toFixed(4)} ms** (target under 0.1 ms) |`,
  `| The instrumentation of one call alone (counters and histograms it updates) | ${(metrics.directPerCall * 1000).toFixed(2)} µs |`,
  `| Rendering /metrics (process metrics included), median | ${ms(metrics.scrapeMedian)} |`,
  '',
  '## Rate budget efficiency (fake clock, simulator enforcing 100 calls per rolling minute)',
  '',
  '| Figure | Value |',
  '|---|---|',
  `| Calls in a burst | ${budget.calls} |`,
  `| Upstream 429s | **${budget.upstream429}** |`,
  `| Calls in the first 15 minutes | ${budget.callsInFirst15Minutes} (100 a minute) |`,
  `| Calls in the first hour | ${budget.callsInFirstHour} (budget 1,500) |`,
  `| Last call at | ${budget.lastCallMinutes.toFixed(2)} min (earliest the budget allows: ${budget.idealLastCallMinutes.toFixed(2)} min; efficiency ${((budget.idealLastCallMinutes / budget.lastCallMinutes) * 100).toFixed(1)}%) |`,
  '',
  ...replicasReport(replicas),
];

function remoteReport(remote, otherProcess) {
  return [
    '## Remote mode (`--transport http`, Entra sign-in, On-Behalf-Of; fakes answering instantly)',
    '',
    '| Figure | Value |',
    '|---|---|',
    `| Round trip over Streamable HTTP (token checked on every request: in full on first sight, then taken as checked for up to 5 min; OBO token cached), median | ${ms(remote.roundTripMedian)} |`,
    `| Round trip over HTTP, p99 | ${ms(remote.roundTripP99)} |`,
    `| The same Defender requests made directly (the history GET and the POST), median | ${ms(remote.directMedian)} |`,
    `| **Overhead over HTTP, median** | **${ms(remote.roundTripMedian - remote.directMedian)}** (target under 3 ms) |`,
    `| Overhead over HTTP with every token checked in full (signature and claims, \`MDE_HTTP_TOKEN_REUSE_SECONDS=0\`), median | ${ms(remote.strictRoundTripMedian - remote.directMedian)} |`,
    `| For context: the same Defender requests made from another process, as the server makes them, median | ${ms(otherProcess)} (the direct figure above is made in the process that runs the fakes) |`,
    `| ${remote.sessions} concurrent sessions (${remote.sessions} analysts): RSS before, after | ${remote.rssBefore.toFixed(1)} MiB, ${remote.rssAfter.toFixed(1)} MiB |`,
    `| **Memory per session** | **${remote.perSessionKb.toFixed(0)} KiB** |`,
    `| All ${remote.sessions} sessions calling at once, latency p50 / p99 (5 rounds) | ${ms(remote.concurrentP50)} / ${ms(remote.concurrentP99)} |`,
    `| Key set fetches / OBO exchanges for the whole run | ${remote.keySetFetches} / ${remote.oboExchanges} (one exchange per analyst) |`,
    '',
  ];
}

function replicasReport(r) {
  if (!r) return ['## Several replicas through Redis', '', 'Skipped: redis-server is not installed (`apt-get update && apt-get install -y redis-server`).', ''];
  const row = (name, c) =>
    `| ${name} | ${ms(c.memoryMedian)} | ${ms(c.redisMedian)} | **${ms(c.redisMedian - c.memoryMedian)}** | ${ms(c.redisP99)} | ${ms(c.budgetOnlyMedian)} |`;
  const d = r.drained;
  return [
    `## Several replicas through Redis (${r.version.split(' ').slice(0, 3).join(' ')}, on this machine)`,
    '',
    `What the shared store adds to one write: a budget slot, the device lock taken and released, the token checked and spent (${r.tcp.rounds} rounds, memory and Redis interleaved).`,
    '',
    '| Redis reached over | In memory, median | Redis, median | **Added per write, median** (target under 1 ms) | Redis, p99 | Budget slot alone (one script), median |',
    '|---|---|---|---|---|---|',
    row('TCP loopback', r.tcp),
    row('Unix socket', r.unix),
    '',
    ...(d
      ? [
          `Three replicas (each its own Redis connection, budget and Defender client) draining ${d.calls} calls fired at once, in real time, against the simulator enforcing 100 calls per rolling minute; the budget is Defender's (100 a minute, 1,500 an hour) with the 250 ms guard the server uses with Redis.`,
          '',
          '| Figure | Value |',
          '|---|---|',
          `| Upstream 429s | **${d.upstream429}** |`,
          `| Most calls answered in any rolling minute | ${d.maxInMinute} |`,
          `| Drained in | ${(d.elapsedMs / 1000).toFixed(1)} s (earliest the budget allows: ${(d.idealMs / 1000).toFixed(1)} s) |`,
          `| **Budget used** | **${(d.budgetUsed * 100).toFixed(1)} %** (target at least 99 %) |`,
          '',
        ]
      : ['Drain skipped (`--skip-drain`).', '']),
  ];
}
const report = lines.join('\n');
process.stdout.write(`${report}\n`);
if (opts.write) {
  const notes = readFileSync(`${root}scripts/bench/NOTES.md`, 'utf8');
  writeFileSync(`${root}BENCHMARKS.md`, `${report}\n${notes}`);
  log('wrote BENCHMARKS.md');
}
