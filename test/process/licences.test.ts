/**
 * What ships: the bundle copies third-party code into dist/, so dist/THIRD-PARTY-NOTICES.txt and
 * dist/sbom.cdx.json must cover exactly the packages in it. The bundle is rebuilt here in memory with the
 * shipped esbuild options and its metafile read independently of the build script's own bookkeeping.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (p: string) => readFileSync(`${root}/${p}`, 'utf8');

interface Component { group?: string; name: string; version: string; purl: string; licenses: unknown[]; hashes?: { alg: string; content: string }[] }
let bundled: { name: string; version: string }[];

beforeAll(async () => {
  const buildScript = `${root}/scripts/build.mjs`;
  const { esbuildOptions } = (await import(buildScript)) as { esbuildOptions: Record<string, unknown> };
  const { build } = await import('esbuild');
  const result = await build({ ...esbuildOptions, write: false, metafile: true, logLevel: 'silent' } as Parameters<typeof build>[0]);
  const dirs = new Set<string>();
  for (const output of Object.values(result.metafile!.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const i = input.lastIndexOf('node_modules/');
      if (i < 0 || bytesInOutput === 0) continue;
      const parts = input.slice(i + 'node_modules/'.length).split('/');
      dirs.add(input.slice(0, i) + 'node_modules/' + parts.slice(0, parts[0]!.startsWith('@') ? 2 : 1).join('/'));
    }
  }
  bundled = [...dirs].map((d) => JSON.parse(read(`${d}/package.json`)) as { name: string; version: string });
}, 60_000);

describe('third-party notices and SBOM', () => {
  it('the bundle really contains third-party packages (the check below is not vacuous)', () => {
    const names = bundled.map((p) => p.name);
    for (const expected of ['@modelcontextprotocol/sdk', 'zod', '@azure/msal-node', 'undici']) expect(names).toContain(expected);
  });

  it('THIRD-PARTY-NOTICES.txt names every bundled package with its version, licence and a non-empty licence text', () => {
    const sections = read('dist/THIRD-PARTY-NOTICES.txt').split(/^={78}$/m).slice(1);
    const byTitle = new Map(sections.map((s) => [s.trim().split('\n')[0]!, s]));
    for (const p of bundled) {
      const section = byTitle.get(`${p.name} ${p.version}`);
      expect(section, `${p.name} ${p.version} missing from the notices`).toBeDefined();
      expect(section!).toMatch(/^Licence: \S+/m);
      const text = section!.split(/^-{78}$/m)[1]?.trim() ?? '';
      expect(text.length, `${p.name}: empty licence text`).toBeGreaterThan(100);
    }
    expect(sections).toHaveLength(bundled.length);
  });

  it('sbom.cdx.json is a CycloneDX document listing exactly the bundled packages, with purl, licence and SHA-512', () => {
    const bom = JSON.parse(read('dist/sbom.cdx.json')) as { bomFormat: string; specVersion: string; metadata: { component: { name: string } }; components: Component[] };
    expect(bom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.5', metadata: { component: { name: 'mde-app-restriction-mcp' } } });
    const listed = bom.components.map((c) => `${c.group ? `${c.group}/` : ''}${c.name}@${c.version}`).sort();
    expect(listed).toEqual(bundled.map((p) => `${p.name}@${p.version}`).sort());
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string; integrity?: string }> };
    for (const c of bom.components) {
      const full = `${c.group ? `${c.group}/` : ''}${c.name}`;
      expect(c.purl).toBe(`pkg:npm/${full.replace('@', '%40')}@${c.version}`);
      expect(c.licenses.length).toBeGreaterThan(0);
      const entry = Object.entries(lock.packages).find(([path, e]) => path.endsWith(`node_modules/${full}`) && e.version === c.version);
      const integrity = entry?.[1].integrity;
      expect(c.hashes).toEqual([{ alg: 'SHA-512', content: Buffer.from(integrity!.replace('sha512-', ''), 'base64').toString('hex') }]);
    }
  });
});
