/**
 * Global set-up for the suites that need a real redis-server (test/helpers/redis-server.ts). Without it,
 * `npm test` still passes and says at the end which suites it skipped and how to install it; with
 * MDE_TEST_REQUIRE_REDIS=1 (set by .ci/run) a missing redis-server fails the run instead.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INSTALL_REDIS, REDIS_REQUIRED, redisServerInstalled } from '../helpers/redis-server.js';

export default function setup(): () => void {
  if (redisServerInstalled()) return () => undefined;
  if (REDIS_REQUIRED) {
    throw new Error(`MDE_TEST_REQUIRE_REDIS=1 but redis-server is not installed (or not on PATH). Install it: ${INSTALL_REDIS}`);
  }
  // Skipped suites write their names here (the workers inherit this variable); the teardown lists them.
  const dir = mkdtempSync(join(tmpdir(), 'mde-redis-skips-'));
  process.env.MDE_TEST_REDIS_SKIPS = join(dir, 'skipped.txt');
  return () => {
    let names: string[] = [];
    try {
      names = [...new Set(readFileSync(process.env.MDE_TEST_REDIS_SKIPS!, 'utf8').split('\n').filter(Boolean))];
    } catch {
      // none recorded
    }
    rmSync(dir, { recursive: true, force: true });
    if (names.length === 0) return;
    process.stderr.write(
      `\nSkipped ${names.length} suite(s) that need redis-server, which is not installed:\n` +
        names.map((n) => `  - ${n}\n`).join('') +
        `Install it to run them: ${INSTALL_REDIS}\n` +
        `(CI sets MDE_TEST_REQUIRE_REDIS=1, which turns this skip into a failure.)\n`,
    );
  };
}
