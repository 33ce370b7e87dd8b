// Shared by `npm run demo` and `npm run demo:approval`: check Node and the installed tools, then build the
// server from the current source into dist/ (or `--outdir DIR`), and say in one line why a demo cannot run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : join(root, 'dist');
export const entry = join(outdir, 'cli.js');

export function stop(message) {
  console.error(`Demo cannot run: ${message}`);
  process.exit(1);
}
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) stop(`Node.js 20.18.1 or later is needed; this is ${process.version}.`);
for (const pkg of ['esbuild', '@modelcontextprotocol/sdk']) {
  if (!existsSync(join(root, 'node_modules', pkg, 'package.json'))) stop(`${pkg} is not installed. Run \`npm ci\` in ${root} first.`);
}

console.log(`Building ${entry} from src/ (scripts/build.mjs)...`);
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--outdir', outdir], { stdio: 'inherit' });
if (built.status !== 0 || !existsSync(entry)) {
  stop(
    built.error
      ? `the build could not start (${built.error.message}).`
      : 'the build failed (its messages are above). If esbuild reports a missing binary (for example after `npm ci --ignore-scripts`), run `npm rebuild esbuild` or `npm ci`.',
  );
}

