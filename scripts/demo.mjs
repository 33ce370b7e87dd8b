#!/usr/bin/env node
// `npm run demo`: builds the server from the current source (scripts/build.mjs, into dist/), starts it on
// the embedded simulator, connects a real MCP client that supports elicitation (it prints the confirmation
// prompt it receives, then accepts), lists the tools, finds a device by host name, lifts its restriction,
// prints the MachineAction Defender returned, and follows the action until the simulated device has
// applied it. `--outdir DIR` builds and runs from DIR instead of dist/ (the test suite uses it).
import { entry } from './demo-build.mjs';

const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');

const HOST = 'finance-ws-017.contoso.com'; // a restricted device in the simulated tenant
const rule = (title) => console.log(`\n=== ${title} ${'='.repeat(Math.max(0, 70 - title.length))}`);

const client = new Client({ name: 'mde-demo-client', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  rule('Confirmation prompt shown to the human');
  console.log(request.params.message);
  console.log(`\n[demo] Schema asks for: ${JSON.stringify(request.params.requestedSchema.properties)}`);
  console.log('[demo] The human clicks "Confirm".');
  return { action: 'accept', content: { confirm: true } };
});

const transport = new StdioClientTransport({
  command: process.execPath,
  args: [entry, '--simulator'],
  // The SDK passes only a minimal environment to the server: give it what it needs explicitly.
  env: { PATH: process.env.PATH ?? '' },
  stderr: 'pipe',
});
transport.stderr?.on('data', (chunk) => process.stderr.write(`  [server] ${chunk}`));

try {
  await client.connect(transport);
  const info = client.getServerVersion();
  rule(`Connected to ${info?.name} ${info?.version}`);

  const { tools } = await client.listTools();
  rule('Tools');
  for (const t of tools) {
    const a = t.annotations ?? {};
    console.log(`- ${t.name}: readOnly=${a.readOnlyHint} destructive=${a.destructiveHint} idempotent=${a.idempotentHint} openWorld=${a.openWorldHint}`);
  }

  rule(`find_machine "${HOST}"`);
  const found = await client.callTool({ name: 'find_machine', arguments: { name: HOST } });
  if (found.isError) throw new Error(found.content?.[0]?.text ?? 'find_machine failed');
  console.log(found.content?.[0]?.text);
  const device = found.structuredContent.devices[0];

  rule(`remove_app_restriction on ${device.machineId}`);
  const result = await client.callTool({
    name: 'remove_app_restriction',
    arguments: { machineId: device.machineId, comment: 'INC-2047: malware removed, device re-scanned clean; lifting restriction' },
  });
  if (result.isError) throw new Error(result.content?.[0]?.text ?? 'tool error');
  rule('Result (text for the agent)');
  console.log(result.content?.[0]?.text);
  rule('MachineAction returned by Defender (structured output)');
  console.log(JSON.stringify(result.structuredContent?.machineAction, null, 2));
  console.log(`\noutcome: ${result.structuredContent?.outcome}, confirmed by: ${result.structuredContent?.confirmedBy}`);

  const { tool, arguments: followArgs } = result.structuredContent.followUp;
  rule(`${tool} (waitForCompletion) until the device applies it`);
  const followed = await client.callTool(
    { name: tool, arguments: { ...followArgs, timeoutSeconds: 30 } },
    undefined,
    { onprogress: (p) => console.log(`  progress: ${p.message}`) },
  );
  console.log(followed.content?.[0]?.text);

  rule(`find_machine "${HOST}" again`);
  const after = await client.callTool({ name: 'find_machine', arguments: { name: HOST } });
  console.log(after.content?.[0]?.text);
  await client.close();
  process.exit(0);
} catch (error) {
  console.error(`Demo failed: ${error instanceof Error ? error.message : String(error)}`);
  await client.close().catch(() => {});
  process.exit(1);
}
