#!/usr/bin/env node
// `npm run docs`: rewrite the README's settings table (between the settings markers) from the one
// description of the settings in src/settings.ts. A unit test fails when the README drifts from it.
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const out = await build({
  entryPoints: [new URL('src/settings.ts', root).pathname],
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
  logLevel: 'warning',
});
const { settingsMarkdown } = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
const readmePath = new URL('README.md', root);
const readme = readFileSync(readmePath, 'utf8');
const start = '<!-- settings:start -->';
const end = '<!-- settings:end -->';
const [before, rest] = readme.split(start);
if (rest === undefined || !rest.includes(end)) throw new Error(`README.md needs the markers ${start} and ${end}.`);
const after = rest.slice(rest.indexOf(end));
writeFileSync(readmePath, `${before}${start}\n${settingsMarkdown()}\n${after}`);
console.log('README.md: settings table regenerated from src/settings.ts');
