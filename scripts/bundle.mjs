#!/usr/bin/env node
// `npm run bundle`: the MCP Bundle (.mcpb) for Claude Desktop, built with @anthropic-ai/mcpb: validates
// manifest.json (`mcpb validate`), stages it with dist/ (self-contained: no node_modules) and LICENSE,
// and packs mde-app-restriction-mcp-<version>.mcpb at the top level. Run after `npm run build`.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const mcpb = join(root, 'node_modules/@anthropic-ai/mcpb/dist/cli/cli.js');
const run = (...args) => execFileSync(process.execPath, [mcpb, ...args], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (!existsSync(join(root, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run npm run build first.');
run('validate', join(root, 'manifest.json'));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const stage = mkdtempSync(join(tmpdir(), 'mde-mcpb-'));
try {
  for (const f of ['manifest.json', 'LICENSE', 'dist']) cpSync(join(root, f), join(stage, f), { recursive: true });
  run('pack', stage, join(root, `mde-app-restriction-mcp-${version}.mcpb`));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
