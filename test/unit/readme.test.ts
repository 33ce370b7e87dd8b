/** The README as a newcomer reads it, and the docs/ pages it leads to: order, links, no repeats, size. */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const readme = read('README.md');
const headings = readme.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3));
const DOCS = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
const PAGES = ['README.md', ...DOCS];

/** Text outside fenced code blocks. */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
const anchorsOf = (text: string) => new Set(prose(text).split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => anchor(l.replace(/^#+ /, ''))));

/** Relative links of a page: [text](target), without http(s) and mailto. */
function linksOf(text: string): string[] {
  return [...prose(text).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^(https?:|mailto:)/.test(t));
}

/** Paragraphs (and list items), whitespace and markup folded, longer than 80 characters. */
function paragraphsOf(text: string): string[] {
  return prose(text)
    .split(/\n\s*\n|\n(?=\s*(?:[-*]|\d+\.) )/)
    .map((p) => p.replace(/^\s*(?:[-*]|\d+\.)\s+/, '').replace(/[*_`]/g, '').replace(/\s+/g, ' ').trim().toLowerCase())
    .filter((p) => p.length > 80 && !p.startsWith('|') && !p.startsWith('<!--'));
}

describe('README', () => {
  it('follows the order a newcomer reads in', () => {
    const order = ['Quick start', 'Connect a client', 'Tools', 'Security model', 'Documentation'];
    const at = order.map((h) => headings.indexOf(h));
    expect(at.every((i) => i >= 0), `missing one of ${order.join(', ')} in ${headings.join(' | ')}`).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('keeps the quick start: npm ci, npm run demo and npm test', () => {
    for (const s of ['npm ci', 'npm run demo', '`npm test`']) expect(readme).toContain(s);
  });

  it('is a front door of at most 25,000 bytes', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(25_000);
  });

  it('never tells users to run the unpublished package by name through npx', () => {
    for (const page of PAGES) {
      const text = read(page);
      expect(text, page).not.toMatch(/"args":\s*\[\s*"-y",\s*"mde-app-restriction-mcp"/);
      expect(text, page).not.toMatch(/^\s*npx (-y )?mde-app-restriction-mcp\b/m);
    }
  });

  it('says where VS Code reads servers from, and documents the proxy variables and the SBOM', () => {
    const clients = read('docs/clients.md');
    for (const s of ['.vscode/mcp.json', 'MCP: Open User Configuration']) expect(clients).toContain(s);
    const configuration = read('docs/configuration.md');
    for (const s of ['`HTTPS_PROXY`', '`HTTP_PROXY`', '`NO_PROXY`']) expect(configuration).toContain(s);
    const security = read('docs/security-model.md');
    for (const s of ['dist/sbom.cdx.json', 'osv-scanner', 'THIRD-PARTY-NOTICES.txt']) expect(security).toContain(s);
  });

  it('shows the same VS Code config as the mcp.json it tells users to copy', () => {
    const clients = read('docs/clients.md');
    const block = clients.slice(clients.indexOf('**VS Code.**')).match(/```json\n([\s\S]+?)\n```/)![1]!;
    expect(JSON.parse(block)).toEqual(JSON.parse(read('mcp.json')));
  });

  it('sets up every client the docs promise, each passing its environment explicitly', () => {
    const clients = read('docs/clients.md');
    for (const s of ['"type": "stdio"', 'claude mcp add mde -e ', 'claude mcp add --transport http', 'claude_desktop_config.json', 'npx mcp-remote', '~/.cursor/mcp.json', 'codex mcp add mde --env ', '[mcp_servers.mde]', 'mcpServers', 'trust', '~/.copilot/mcp-config.json', 'http://127.0.0.1:6274/oauth/callback']) {
      expect(clients, s).toContain(s);
    }
    expect(existsSync(join(root, 'docs/security-copilot/plugin.yaml'))).toBe(true);
  });

  it('tells how to try the two-person rule with the simulated users', () => {
    const twoPerson = read('docs/two-person.md');
    for (const name of ['ada', 'bob', 'carol']) expect(twoPerson).toContain(`simulated-user.${name}`);
  });
});

describe('README and docs/', () => {
  const files = [...PAGES, 'ARCHITECTURE.md', 'CONTRIBUTING.md', 'MUTATION.md', 'BENCHMARKS.md'].filter((f) => existsSync(join(root, f)));

  it('link only to files that exist, and to headings that exist', () => {
    const broken: string[] = [];
    for (const page of files) {
      for (const link of linksOf(read(page))) {
        const [path, hash] = link.split('#') as [string, string | undefined];
        const target = path ? join(dirname(join(root, page)), decodeURIComponent(path)) : join(root, page);
        if (!existsSync(target)) {
          broken.push(`${page}: ${link} (no such file)`);
          continue;
        }
        if (hash && statSync(target).isFile() && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(hash)) {
          broken.push(`${page}: ${link} (no heading #${hash} in ${relative(root, target)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('repeat no paragraph', () => {
    const seen = new Map<string, string>();
    const repeats: string[] = [];
    for (const page of PAGES) {
      for (const p of paragraphsOf(read(page))) {
        const first = seen.get(p);
        if (first) repeats.push(`${page} repeats ${first}: "${p.slice(0, 100)}…"`);
        else seen.set(p, page);
      }
    }
    expect(repeats).toEqual([]);
  });
});
