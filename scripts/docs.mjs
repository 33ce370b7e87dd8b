#!/usr/bin/env node
// `npm run docs`: rewrite the generated tables between their markers: the settings table from the one
// description of the settings in src/settings.ts, and the tool table from what the server lists in each
// mode (src/tool-table.ts). Unit tests fail when a file drifts from them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'mde-docs-'));
let settingsMarkdown, toolsMarkdown;
try {
  await build({
    stdin: {
      contents: "export { settingsMarkdown } from './src/settings.ts'; export { toolsMarkdown } from './src/tool-table.ts';",
      resolveDir: new URL('.', root).pathname,
      loader: 'ts',
    },
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile: join(dir, 'docs.mjs'),
    // Bundled CommonJS code may call require().
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  ({ settingsMarkdown, toolsMarkdown } = await import(pathToFileURL(join(dir, 'docs.mjs')).href));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Replaces what lies between `<!-- name:start -->` and `<!-- name:end -->` in one file. */
function rewrite(file, name, table) {
  const path = new URL(file, root);
  const text = readFileSync(path, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const [before, rest] = text.split(start);
  if (rest === undefined || !rest.includes(end)) throw new Error(`${file} needs the markers ${start} and ${end}.`);
  writeFileSync(path, `${before}${start}\n${table}\n${rest.slice(rest.indexOf(end))}`);
  console.log(`${file}: ${name} table regenerated`);
}

rewrite('docs/configuration.md', 'settings', settingsMarkdown());
rewrite('README.md', 'tools', await toolsMarkdown());
