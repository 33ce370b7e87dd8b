/**
 * The container suites (test/process/container.test.ts) run the image that .ci/container builds, with a
 * real engine (podman). Without podman or without that image they are skipped, saying so and how to get
 * them; with MDE_TEST_REQUIRE_PODMAN=1 (CI, set by .ci/run) that is a failure instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const PODMAN_REQUIRED = process.env.MDE_TEST_REQUIRE_PODMAN === '1';
export const IMAGE = process.env.MDE_TEST_IMAGE ?? 'localhost/mde-app-restriction-mcp:ci';
export const REDIS_IMAGE = process.env.MDE_TEST_REDIS_IMAGE ?? 'localhost/mde-dev-redis:ci';
export const BUILD_IMAGES = '.ci/container';

/** The engine settings .ci/container writes (runc, ulimits), unless CONTAINERS_CONF names others. */
function engineEnv(): NodeJS.ProcessEnv {
  if (process.env.CONTAINERS_CONF) return process.env;
  const cache = process.env.MDE_CI_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mde-ci');
  const conf = join(cache, 'containers.conf');
  return existsSync(conf) ? { ...process.env, CONTAINERS_CONF: conf } : process.env;
}

export function podmanSync(args: string[], timeout = 60_000) {
  const r = spawnSync('podman', args, { env: engineEnv(), encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Run podman without blocking the event loop (the test talks to the container meanwhile). */
export function podman(args: string[], timeout = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('podman', args, { env: engineEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, stdout, stderr: stderr + String(error) });
    });
  });
}

/** Why the container suites cannot run here, or undefined when podman and both images are present. */
export function podmanMissing(): string | undefined {
  const version = podmanSync(['--version'], 15_000);
  if (version.error || version.status !== 0) return 'podman is not installed (or not on PATH)';
  for (const image of [IMAGE, REDIS_IMAGE]) {
    if (podmanSync(['image', 'exists', image], 15_000).status !== 0) return `the image ${image} does not exist`;
  }
  return undefined;
}
