/**
 * The README's tool table (between the tools markers), written by `npm run docs` and checked by a unit
 * test. It is read from the server itself: one server is built for each mode that changes which tools
 * exist (stdio, `--read-only`, `MDE_APPROVAL=two-person`, both), and each is asked `tools/list` over an
 * in-memory MCP connection, so the table shows what clients see. Not part of the shipped bundle (cli.ts
 * does not import it).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Tool as ListedTool } from '@modelcontextprotocol/sdk/types.js';
import { Approvals } from './approval/approvals.js';
import { MemoryApprovalStore } from './approval/store.js';
import { NO_AUDIT } from './audit.js';
import { DefenderClient } from './defender/client.js';
import type { Logger } from './log.js';
import { createServer, type ServerDeps } from './server.js';
import { APPROVAL_TOOLS } from './tools/approval-tools.js';

/** The modes that decide which tools are registered. */
const MODES = ['default', 'readOnly', 'twoPerson', 'twoPersonReadOnly'] as const;
type Mode = (typeof MODES)[number];

/** When a tool is registered, in words, keyed by the modes it appears in. */
const WHEN: Record<string, string> = {
  'default readOnly twoPerson twoPersonReadOnly': 'always',
  'default twoPerson': 'unless `--read-only`',
  'twoPerson twoPersonReadOnly': 'only with `MDE_APPROVAL=two-person`',
  twoPerson: 'only with `MDE_APPROVAL=two-person`, unless `--read-only`',
};

const silent: Logger = { debug: () => undefined, info: () => undefined, warning: () => undefined, error: () => undefined };

/** Lists the tools a server built for `mode` offers. Nothing reaches Defender: listing calls no tool. */
async function listTools(mode: Mode): Promise<ListedTool[]> {
  const api = new DefenderClient({
    baseUrl: 'http://127.0.0.1:9',
    tokens: { getToken: () => Promise.reject(new Error('listing tools signs in nowhere')), invalidate: () => undefined, description: 'none' },
    timeoutMs: 1_000,
    logger: silent,
  });
  const twoPerson = mode === 'twoPerson' || mode === 'twoPersonReadOnly';
  const deps: ServerDeps = {
    api,
    logger: silent,
    confirmation: { mode: 'auto', skip: false },
    readOnly: mode === 'readOnly' || mode === 'twoPersonReadOnly',
    ...(twoPerson
      ? {
          approvals: {
            service: new Approvals({ store: new MemoryApprovalStore(), settings: { deviceGroups: [], tags: [], ttlMs: 3_600_000, approverRole: 'MDE.Approver' }, audit: NO_AUDIT }),
            tools: APPROVAL_TOOLS,
          },
        }
      : {}),
  };
  const server = createServer(deps);
  const client = new Client({ name: 'tool-table', version: '1.0.0' });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  try {
    return (await client.listTools()).tools;
  } finally {
    await client.close();
    await server.close();
  }
}

/** The first sentence of a description: the table's one line. */
export function firstSentence(text: string): string {
  const end = text.search(/\.\s+(?=[A-Z])/);
  return end < 0 ? text.trim() : text.slice(0, end + 1);
}

/** The README's tool table, from what servers in every mode list. */
export async function toolsMarkdown(): Promise<string> {
  const seen = new Map<string, { tool: ListedTool; modes: Mode[] }>();
  for (const mode of MODES) {
    for (const tool of await listTools(mode)) {
      const entry = seen.get(tool.name) ?? { tool, modes: [] };
      entry.modes.push(mode);
      seen.set(tool.name, entry);
    }
  }
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // As in the SDK's listing: a hint left out would read as its default there, so it is an error here.
  const hint = (value: boolean | undefined, bold = false) => {
    if (value === undefined) throw new Error('every tool declares all four hints');
    return bold && value ? `**${value}**` : String(value);
  };
  const rows = [...seen.values()].map(({ tool, modes }) => {
    const when = WHEN[modes.join(' ')];
    if (!when) throw new Error(`${tool.name} is registered in an unexpected set of modes (${modes.join(', ')}): name it in WHEN`);
    const a = tool.annotations ?? {};
    return `| \`${tool.name}\` | ${cell(tool.title ?? '')} | ${cell(firstSentence(tool.description ?? ''))} | ${hint(a.readOnlyHint, true)} | ${hint(a.destructiveHint, true)} | ${hint(a.idempotentHint)} | ${hint(a.openWorldHint)} | ${when} |`;
  });
  return ['| Tool | Title | What it does | readOnly | destructive | idempotent | openWorld | Registered |', '|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}
