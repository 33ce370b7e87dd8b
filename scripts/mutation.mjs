#!/usr/bin/env node
/**
 * `npm run test:mutation`: Stryker 10 with its vitest runner over the security core (src/confirmation,
 * the write guard, src/policy.ts, src/audit.ts, src/defender, src/approval,
 * tools/approve-action.ts, tools/reject-action.ts, src/store). Not part of `npm test`.
 * Stryker 10 needs Node >= 22 and the project runs on Node 20, so neither is a devDependency: Node 22
 * comes from scripts/node22.mjs and Stryker is installed on first use into .cache/stryker (gitignored),
 * with the project's own vitest linked in (one vitest, the one the tests import).
 * Extra arguments go to Stryker, e.g. `npm run test:mutation -- --mutate src/policy.ts`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { node22 } from './node22.mjs';

const STRYKER_VERSION = '10.1.1';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = join(root, '.cache', 'stryker');
const modules = join(prefix, 'node_modules');
const cli = join(modules, '@stryker-mutator', 'core', 'bin', 'stryker.js');

const node = node22();
const npmCli = join(dirname(node), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
if (!existsSync(cli)) {
  mkdirSync(prefix, { recursive: true });
  process.stderr.write(`Installing Stryker ${STRYKER_VERSION} into ${prefix} ...\n`);
  // --legacy-peer-deps: the runner's peer vitest is the project's own, linked below.
  const npmArgs = ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--legacy-peer-deps', `@stryker-mutator/core@${STRYKER_VERSION}`, `@stryker-mutator/vitest-runner@${STRYKER_VERSION}`];
  if (existsSync(npmCli)) execFileSync(node, [npmCli, ...npmArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
  else execFileSync('npm', npmArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
}
for (const pkg of ['vitest']) {
  const link = join(modules, pkg);
  rmSync(link, { recursive: true, force: true });
  symlinkSync(join(root, 'node_modules', pkg), link, 'dir');
}

const run = spawnSync(node, [cli, 'run', 'stryker.config.mjs', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
    STRYKER_PLUGIN_DIR: modules,
    // Stryker runs vitest inside processes it started itself: the test CA (read by Node only at start)
    // and the loopback guard must be in their environment from the beginning.
    NODE_EXTRA_CA_CERTS: join(root, 'test', 'fixtures', 'tls', 'ca.pem'),
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(root, 'test', 'helpers', 'loopback-only.cjs')}`.trim(),
  },
});
process.exit(run.status ?? 1);
