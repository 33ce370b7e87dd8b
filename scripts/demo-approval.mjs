#!/usr/bin/env node
// `npm run demo:approval`: the two-person rule against the embedded simulator. Builds the server from the
// current source, starts it in remote mode (`--transport http`) with MDE_APPROVAL=two-person, and connects
// two MCP clients over Streamable HTTP as two stand-in analysts: Ada requests lifting a restriction (she
// confirms, nothing is sent: approval_pending), tries to approve it herself (refused), and Bob, who holds
// the approver role, approves it (he confirms in his own prompt); the action goes out under Bob's identity
// with a comment naming both, and Ada follows it with get_approval.
// The stand-ins are MDE_HTTP_AUTH=simulated-users, which the server refuses to start without --simulator
// or on any bind but loopback: they can never stand in for anyone in a real tenant.
// `--outdir DIR` builds and runs from DIR instead of dist/; `--no-follow` skips following the action to
// completion (the test suite uses both).
import { spawn } from 'node:child_process';
import { entry } from './demo-build.mjs';

const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');

const HOST = 'finance-ws-017.contoso.com'; // a restricted device in the simulated tenant
const rule = (title) => console.log(`\n=== ${title} ${'='.repeat(Math.max(0, 70 - title.length))}`);
const text = (r) => r.content?.map((c) => c.text ?? '').join('\n');

const server = spawn(
  process.execPath,
  [entry, '--simulator', '--transport', 'http', '--port', '0', '--http-auth', 'simulated-users', '--approval', 'two-person', '--approval-ttl-minutes', '30'],
  { env: { PATH: process.env.PATH ?? '', ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}) }, stdio: ['ignore', 'ignore', 'pipe'] },
);
let log = '';
const url = await new Promise((resolveUrl, reject) => {
  server.stderr.on('data', (chunk) => {
    log += chunk;
    process.stderr.write(`  [server] ${chunk}`);
    const m = log.match(/on (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
    if (m) resolveUrl(m[1]);
  });
  server.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
});

/** One analyst's MCP client: their stand-in sign-in, and a confirmation prompt they accept. */
async function analyst(name) {
  const client = new Client({ name: `demo-${name}`, version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    rule(`Confirmation prompt shown to ${name}`);
    console.log(request.params.message);
    console.log(`[demo] ${name} clicks "Confirm".`);
    return { action: 'accept', content: { confirm: true } };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer simulated-user.${name}` } } }));
  return { client, call: (tool, args) => client.callTool({ name: tool, arguments: args }) };
}

let code = 0;
const clients = [];
try {
  const ada = await analyst('ada');
  const bob = await analyst('bob');
  clients.push(ada.client, bob.client);
  rule(`Connected as ada and bob to ${url}`);

  const found = await ada.call('find_machine', { name: HOST });
  const device = found.structuredContent.devices[0];
  rule(`ada: remove_app_restriction on ${HOST}`);
  const asked = await ada.call('remove_app_restriction', { machineId: device.machineId, comment: 'INC-2047: malware removed, device re-scanned clean' });
  if (asked.isError) throw new Error(text(asked));
  console.log(text(asked));
  const approvalId = asked.structuredContent.approval.id;
  console.log(`\noutcome: ${asked.structuredContent.outcome}, approval ${approvalId}`);

  rule('ada: approve_action on her own request');
  const self = await ada.call('approve_action', { approvalId });
  console.log(text(self));

  rule('bob: list_pending_approvals');
  console.log(text(await bob.call('list_pending_approvals', {})));

  rule('bob: approve_action');
  const approved = await bob.call('approve_action', { approvalId });
  if (approved.isError) throw new Error(text(approved));
  rule('Result for bob');
  console.log(text(approved));
  const action = approved.structuredContent.machineAction;
  console.log(`\noutcome: ${approved.structuredContent.outcome}, requestor: ${action.requestor}, comment: ${JSON.stringify(action.requestorComment)}`);

  rule('ada: get_approval');
  const seen = await ada.call('get_approval', { approvalId });
  console.log(text(seen));
  console.log(`\nstatus: ${seen.structuredContent.approval.status}`);

  if (!process.argv.includes('--no-follow')) {
    rule('bob: get_machine_action (waitForCompletion)');
    console.log(text(await bob.call('get_machine_action', { actionId: action.id, waitForCompletion: true, timeoutSeconds: 30 })));
  }
} catch (error) {
  console.error(`Demo failed: ${error instanceof Error ? error.message : String(error)}`);
  code = 1;
} finally {
  for (const c of clients) await c.close().catch(() => {});
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
}
process.exit(code);
