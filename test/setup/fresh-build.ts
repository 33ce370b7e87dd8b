/**
 * vitest globalSetup: the process suites spawn dist/, so dist/ must be built from the current src/.
 * When any source file (or the build script) is newer than the bundle, rebuild it here; a failed build
 * fails the run instead of testing an old bundle.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return latest;
}

export function isStale(): boolean {
  const bundle = join(root, 'dist/cli.js');
  if (!existsSync(bundle)) return true;
  const sources = Math.max(newest(join(root, 'src')), statSync(join(root, 'scripts/build.mjs')).mtimeMs);
  return sources > statSync(bundle).mtimeMs;
}

export default function setup(): void {
  if (!isStale()) return;
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (isStale()) throw new Error('dist/ is still older than src/ after building: run `npm run build` and check for errors.');
}
