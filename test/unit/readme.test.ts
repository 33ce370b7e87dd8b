/** The README as a newcomer reads it: its order, and what it must never tell them to run. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const headings = readme.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3));

describe('README', () => {
  it('follows the order a newcomer reads in', () => {
    const order = ['Quick start', 'Connect a client', 'Tools', 'Security model', 'Settings', 'Entra ID setup and clouds', 'Troubleshooting'];
    const at = order.map((h) => headings.indexOf(h));
    expect(at.every((i) => i >= 0), `missing one of ${order.join(', ')} in ${headings.join(' | ')}`).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('never tells users to run the unpublished package by name through npx', () => {
    expect(readme).not.toMatch(/"args":\s*\[\s*"-y",\s*"mde-app-restriction-mcp"/);
    expect(readme).not.toMatch(/^\s*npx (-y )?mde-app-restriction-mcp\b/m);
  });

  it('says where VS Code reads servers from, and documents the proxy variables and the SBOM', () => {
    for (const s of ['.vscode/mcp.json', 'MCP: Open User Configuration', '`HTTPS_PROXY`', '`HTTP_PROXY`', '`NO_PROXY`', 'dist/sbom.cdx.json', 'osv-scanner', 'THIRD-PARTY-NOTICES.txt']) {
      expect(readme).toContain(s);
    }
  });

  it('shows the same VS Code config as the mcp.json it tells users to copy', () => {
    const block = readme.slice(readme.indexOf('**VS Code.**')).match(/```json\n([\s\S]+?)\n```/)![1]!;
    const file = readFileSync(new URL('../../mcp.json', import.meta.url), 'utf8');
    expect(JSON.parse(block)).toEqual(JSON.parse(file));
  });
});
