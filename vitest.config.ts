import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The HTTPS fake of the Entra token endpoint uses a test CA. Node reads NODE_EXTRA_CA_CERTS only at
// start-up, so it is set here, before vitest forks its workers (which inherit it), and passed explicitly
// to every server the process tests spawn.
process.env.NODE_EXTRA_CA_CERTS = fileURLToPath(new URL('./test/fixtures/tls/ca.pem', import.meta.url));
// Every test worker (and what it spawns with this environment) refuses non-loopback connections.
export const LOOPBACK_GUARD = fileURLToPath(new URL('./test/helpers/loopback-only.cjs', import.meta.url));
if (!process.env.NODE_OPTIONS?.includes(LOOPBACK_GUARD)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${LOOPBACK_GUARD}`.trim();
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Process suites spawn dist/: never let them run an old bundle. Shared-state suites need redis-server:
    // found here, and listed at the end of the run when they were skipped.
    globalSetup: ['test/setup/fresh-build.ts', 'test/setup/redis.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
  },
});
