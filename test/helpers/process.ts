/**
 * Process-level harness: the built server (dist/cli.js) spawned over stdio by the SDK's
 * StdioClientTransport, which passes only a minimal environment: everything the server needs is given
 * explicitly here, as a client config would.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, LoggingMessageNotificationSchema, type CallToolResult, type ElicitRequest } from '@modelcontextprotocol/sdk/types.js';
import { FakeTenant, type SimulatorOptions } from './fake-tenant.js';
import { CLIENT_SECRET } from './harness.js';

export { CLIENT_SECRET };

export const ENTRY = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const tls = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));
export const CA_PATH = tls('ca.pem');
export const CLIENT_CERT_PLAIN = tls('client-plain.pem');
export const CLIENT_CERT_ENCRYPTED = tls('client-encrypted.pem');
export const CLIENT_CERT_PASSWORD = 'test-cert-password';

/** The Defender API fake over http and the Entra token endpoint fake over https, sharing one simulator. */
export async function startFakes(opts: SimulatorOptions = {}) {
  const sim = new FakeTenant({
    clientSecret: CLIENT_SECRET,
    clientCertificatePem: readFileSync(CLIENT_CERT_PLAIN, 'utf8'),
    ...opts,
  });
  const apiUrl = await sim.listen();
  const authorityHost = await sim.listen({ tls: { key: readFileSync(tls('server.key')), cert: readFileSync(tls('server.pem')) } });
  return { sim, apiUrl, authorityHost };
}

export const LOOPBACK_GUARD = fileURLToPath(new URL('./loopback-only.cjs', import.meta.url));

/** What every spawned server gets: PATH, the test CA, and the guard that refuses non-loopback connections. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: CA_PATH, NODE_OPTIONS: `--require ${LOOPBACK_GUARD}` };
}

/** Spawn the built server and close it with the test file's other cleanups. */
export async function spawnTracked(cleanups: (() => Promise<void> | void)[], opts: Parameters<typeof spawnServer>[0]) {
  const s = await spawnServer(opts);
  cleanups.push(() => s.close());
  return s;
}

export async function spawnServer(opts: {
  env: Record<string, string>;
  args?: string[];
  elicit?: 'accept' | 'decline';
}) {
  const client = new Client(
    { name: 'process-test-client', version: '1.0.0' },
    { capabilities: opts.elicit ? { elicitation: { form: {} } } : {} },
  );
  const prompts: ElicitRequest['params'][] = [];
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
  if (opts.elicit) {
    const answer = opts.elicit;
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      prompts.push(request.params);
      return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
    });
  }
  const transport = new StdioClientTransport({ command: process.execPath, args: [ENTRY, ...(opts.args ?? [])], env: opts.env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await client.connect(transport);
  return {
    client,
    prompts,
    /** MCP logging notifications received from the server. */
    logs,
    stderr: () => stderr,
    async call(args: Record<string, unknown>) {
      return (await client.callTool({ name: 'remove_app_restriction', arguments: args })) as CallToolResult;
    },
    close: () => client.close(),
  };
}

/** Run the server to completion (for start-up failures and --help): exit code, stdout, stderr. */
export function runServer(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [ENTRY, ...args], { env, input: '', encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
