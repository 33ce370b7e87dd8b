// Remote mode benchmarks (part of `npm run bench`): the built server spawned with `--transport http` and
// Entra sign-in, against a fake Entra ID over HTTPS (key set, On-Behalf-Of grant) and a Defender fake
// answering at once, driven by the SDK's Streamable HTTP client.
//  - per-call overhead over HTTP, token validation and the (cached) OBO token included;
//  - 200 concurrent sessions of 200 analysts: memory per session, p50/p99 latency of concurrent calls.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const TENANT = 'b0000000-0000-4000-8000-000000000001';
const CLIENT_ID = 'c0000000-0000-4000-8000-000000000002';
const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

const median = (xs) => quantile(xs, 0.5);
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function startFakeEntra(fixture) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', use: 'sig', alg: 'RS256' };
  const counts = { keys: 0, obo: 0 };
  const server = createHttpsServer({ key: readFileSync(fixture('server.key')), cert: readFileSync(fixture('server.pem')) }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (req.url?.endsWith('/discovery/v2.0/keys')) {
        counts.keys++;
        return res.end(JSON.stringify({ keys: [jwk] }));
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      counts.obo++;
      const claims = JSON.parse(Buffer.from((form.get('assertion') ?? '..').split('.')[1], 'base64url').toString() || '{}');
      res.end(
        JSON.stringify({
          token_type: 'Bearer',
          expires_in: 3599,
          access_token: `obo-${randomUUID()}`,
          client_info: Buffer.from(JSON.stringify({ uid: claims.oid ?? 'app', utid: TENANT })).toString('base64url'),
        }),
      );
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const authorityHost = `https://127.0.0.1:${server.address().port}`;
  const now = () => Math.floor(Date.now() / 1000);
  return {
    authorityHost,
    counts,
    token: (oid = randomUUID()) =>
      new SignJWT({ aud: CLIENT_ID, iss: `${authorityHost}/${TENANT}/v2.0`, tid: TENANT, oid, scp: 'user_impersonation', preferred_username: `${oid.slice(0, 8)}@contoso.com`, nbf: now(), exp: now() + 3600 })
        .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
        .sign(privateKey),
    close: () => new Promise((r) => server.close(r)),
  };
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

async function spawnHttpServer(entry, env, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, entry, '--transport', 'http', '--port', '0', '--dangerously-skip-confirmation'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  // The server logs a line or two per call. Only the start-up line is searched, and only the last few KiB
  // are kept afterwards (for an exit message): appending every line to one string and matching it again
  // on each chunk made the bench process flatten a growing string per call, which slowed every round trip.
  let stderr = '';
  let found = false;
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (c) => {
      stderr = (stderr + c).slice(-4096);
      const m = found ? null : stderr.match(/http:\/\/127\.0\.0\.1:\d+\/mcp/);
      if (m) resolve(m[0]);
      found ||= Boolean(m);
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return { child, url };
}

async function connect(url, token) {
  const client = new Client({ name: 'bench-http', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  const call = async () => {
    const r = await client.callTool({ name: 'remove_app_restriction', arguments: { machineId: DEVICE, comment: 'INC-1: bench' } });
    if (r.isError) throw new Error(`bench call failed: ${r.content[0].text}`);
  };
  return { client, call, transport };
}

/** One analyst calling in a loop: the round trip of each call after the first (key set fetch, OBO exchange). */
async function roundTrips(url, token, calls) {
  const one = await connect(url, token);
  await one.call();
  const out = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await one.call();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await one.transport.terminateSession().catch(() => undefined);
  await one.client.close();
  return out;
}

export async function httpBench({ entry, fixture, apiUrl, direct, calls = 1000, sessions = 200, log, nodeArgs = [] }) {
  const entra = await startFakeEntra(fixture);
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_EXTRA_CA_CERTS: fixture('ca.pem'),
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    AZURE_CLIENT_SECRET: 'bench-secret',
    AZURE_AUTHORITY_HOST: entra.authorityHost,
    MDE_API_URL: apiUrl,
    MDE_RATE_LIMIT_PER_MINUTE: '1000000',
    MDE_RATE_LIMIT_PER_HOUR: '100000000',
    MDE_HTTP_MAX_SESSIONS_PER_USER: '1000',
  };
  // The same loop against a server that checks the token's signature and claims on every request.
  log(`http per-call overhead, every token checked in full (MDE_HTTP_TOKEN_REUSE_SECONDS=0): ${calls} calls`);
  const strict = await spawnHttpServer(entry, { ...env, MDE_HTTP_TOKEN_REUSE_SECONDS: '0' }, nodeArgs);
  let strictTrips;
  try {
    strictTrips = await roundTrips(strict.url, await entra.token(), calls);
  } finally {
    strict.child.kill('SIGTERM');
    await new Promise((r) => strict.child.once('exit', r));
  }

  const before = { ...entra.counts }; // what the second server fetches and exchanges is counted alone
  const { child, url } = await spawnHttpServer(entry, env, nodeArgs);
  try {
    log(`http per-call overhead: ${calls} calls`);
    const trips = await roundTrips(url, await entra.token(), calls);
    const directMedian = median(await direct(calls));

    log(`http sessions: ${sessions} analysts, one session each`);
    const rssBefore = rssMb(child.pid);
    const tokens = await Promise.all(Array.from({ length: sessions }, () => entra.token()));
    const clients = [];
    for (const t of tokens) clients.push(await connect(url, t));
    await Promise.all(clients.map((c) => c.call())); // each analyst's first call: one OBO exchange each
    const rssAfter = rssMb(child.pid);
    const latencies = [];
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        clients.map(async (c) => {
          const t0 = process.hrtime.bigint();
          await c.call();
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }),
      );
    }
    for (const c of clients) await c.client.close();
    return {
      roundTripMedian: median(trips),
      roundTripP99: quantile(trips, 0.99),
      strictRoundTripMedian: median(strictTrips),
      directMedian,
      sessions,
      rssBefore,
      rssAfter,
      perSessionKb: ((rssAfter - rssBefore) * 1024) / sessions,
      concurrentP50: median(latencies),
      concurrentP99: quantile(latencies, 0.99),
      keySetFetches: entra.counts.keys - before.keys,
      oboExchanges: entra.counts.obo - before.obo,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await entra.close();
  }
}
