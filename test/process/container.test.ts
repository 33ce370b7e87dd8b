/**
 * The container image and the Kubernetes manifests, run by a real engine (podman): the image that
 * .ci/container builds from the Dockerfile, and the kustomize base run with `podman kube play`.
 * Skipped (saying why) without podman or the image; MDE_TEST_REQUIRE_PODMAN=1 (CI) fails instead.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { BUILD_IMAGES, IMAGE, PODMAN_REQUIRED, REDIS_IMAGE, podman, podmanMissing, podmanSync } from '../helpers/podman.js';
import { freePort } from '../helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMENT = 'INC-2201: cleaned, lifting restriction';
const missing = podmanMissing();
if (missing && !PODMAN_REQUIRED) {
  process.stderr.write(`\nSkipped the container suites: ${missing}. Build the images to run them: ${BUILD_IMAGES}\n(CI sets MDE_TEST_REQUIRE_PODMAN=1, which turns this skip into a failure.)\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(url: string, ms: number): Promise<number> {
  const t0 = Date.now();
  let last = 'no answer';
  while (Date.now() - t0 < ms) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return Date.now() - t0;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`${url} not healthy after ${ms} ms (${last})`);
}

async function connect(base: string): Promise<Client> {
  const client = new Client({ name: 'container-test', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
  return client;
}

const removeRestriction = async (client: Client, args: Record<string, unknown>) =>
  (await client.callTool({ name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: COMMENT, ...args } })) as CallToolResult;

describe.skipIf(Boolean(missing) && !PODMAN_REQUIRED)(`container image ${IMAGE} [podman]${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('is present (MDE_TEST_REQUIRE_PODMAN=1 fails here rather than skipping)', () => {
    expect(missing, `${missing}: run ${BUILD_IMAGES}`).toBeUndefined();
  });

  it('with no sign-in configured refuses to start and names what to set', async () => {
    const r = await podman(['run', '--rm', '--network', 'none', IMAGE]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Set AZURE_TENANT_ID/);
    expect(r.stderr).toMatch(/AZURE_CLIENT_SECRET/);
    // The simulator serves without sign-in: refused on the image's default 0.0.0.0 bind.
    const sim = await podman(['run', '--rm', '--network', 'none', IMAGE, '--simulator']);
    expect(sim.status).toBe(2);
    expect(sim.stderr).toMatch(/MDE_HTTP_AUTH=none serves without sign-in, so it is refused on 0\.0\.0\.0: bind to 127\.0\.0\.1/);
  });

  it('carries the labels, a numeric user, and serves --simulator on a read-only root: /healthz, initialize, tools/list, HEALTHCHECK, then SIGTERM exits 0', async () => {
    const inspect = JSON.parse(podmanSync(['image', 'inspect', IMAGE]).stdout)[0];
    const serverJson = JSON.parse(readFileSync(join(ROOT, 'server.json'), 'utf8'));
    expect(inspect.Config.User).toBe('1000');
    expect(inspect.Config.Labels['io.modelcontextprotocol.server.name']).toBe(serverJson.name);
    expect(inspect.Config.Labels['org.opencontainers.image.version']).toBe(serverJson.version);
    expect((inspect.Healthcheck ?? inspect.Config.Healthcheck)?.Test).toEqual(['CMD', '/usr/local/bin/node', '/app/healthcheck.mjs']);
    expect(inspect.Size).toBeLessThanOrEqual(150_000_000);

    const port = await freePort();
    const name = `mde-ct-${randomUUID().slice(0, 8)}`;
    const started = await podman(['run', '-d', '--name', name, '--network', 'host', '--read-only', '--cap-drop', 'ALL', '-e', 'MDE_HTTP_HOST=127.0.0.1', '-e', `MDE_HTTP_PORT=${port}`, IMAGE, '--simulator']);
    expect(started.status, started.stderr).toBe(0);
    try {
      const base = `http://127.0.0.1:${port}`;
      const ms = await waitFor(`${base}/healthz`, 15_000);
      process.stderr.write(`container: start to healthy ${ms} ms\n`);
      const client = await connect(base);
      expect(client.getServerVersion()?.name).toBeTruthy();
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('remove_app_restriction');
      await client.close();
      // The image's HEALTHCHECK follows MDE_HTTP_PORT.
      expect((await podman(['healthcheck', 'run', name])).status).toBe(0);

      const stopped = await podman(['stop', '--time', '20', name]);
      expect(stopped.status, stopped.stderr).toBe(0);
      const state = JSON.parse(podmanSync(['inspect', name]).stdout)[0].State;
      expect(state.ExitCode).toBe(0);
      expect((await podman(['logs', name])).stderr).toMatch(/SIGTERM: no new requests/);
    } finally {
      podmanSync(['rm', '-f', name]);
    }
  }, 60_000);

  describe('podman kube play: two replicas of the kustomize base and Redis', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-kube-'));
    const file = join(dir, 'play.yaml');
    // Names of this run only: pods another run left behind (killed before its --down) never collide.
    const run = randomUUID().slice(0, 8);
    afterAll(async () => {
      await podman(['kube', 'play', '--down', file]);
      rmSync(dir, { recursive: true, force: true });
    });

    /**
     * The base's Deployment, changed only where hostNetwork needs it. Two replicas of one pod template on
     * hostNetwork would bind the same port (and --simulator serves only on loopback, which pod networks do
     * not share), so each replica is a Deployment of one with its own loopback port; kube play ignores
     * Services and does not resolve their names, so Redis is reached on loopback too.
     */
    function manifests(ports: number[], redisPort: number): string {
      const base = parse(readFileSync(join(ROOT, 'deploy/kubernetes/base/deployment.yaml'), 'utf8'));
      const key = randomBytes(32).toString('base64');
      const replicas = ports.map((port, i) => {
        const d = structuredClone(base);
        d.metadata.name = `mde-ct-${run}-replica-${i}`;
        d.spec.replicas = 1;
        d.spec.selector.matchLabels = { app: d.metadata.name };
        d.spec.template.metadata.labels = { app: d.metadata.name };
        d.spec.template.spec.hostNetwork = true;
        const c = d.spec.template.spec.containers[0];
        c.image = IMAGE;
        c.args = ['--simulator'];
        delete c.ports;
        delete c.envFrom;
        c.env = Object.entries({ MDE_TRANSPORT: 'http', MDE_HTTP_HOST: '127.0.0.1', MDE_HTTP_PORT: String(port), MDE_REDIS_URL: `redis://127.0.0.1:${redisPort}`, MDE_CONFIRMATION_KEY: key }).map(([name, value]) => ({ name, value }));
        return d;
      });
      const redis = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/dev-redis/redis.yaml'), 'utf8')).map((d) => d.toJS()).find((o) => o.kind === 'Deployment');
      redis.metadata.name = `mde-ct-${run}-redis`;
      redis.spec.template.spec.hostNetwork = true;
      const rc = redis.spec.template.spec.containers[0];
      rc.image = REDIS_IMAGE;
      rc.args = ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/data'];
      delete rc.ports;
      return [redis, ...replicas].map((o) => stringify(o)).join('---\n');
    }

    it('a confirmation token issued by one replica is redeemed on the other and refused when replayed', async () => {
      const ports = [await freePort(), await freePort()];
      const redisPort = await freePort();
      writeFileSync(file, manifests(ports, redisPort));
      const played = await podman(['kube', 'play', file], 120_000);
      expect(played.status, played.stderr).toBe(0);
      const [a, b] = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string];
      await Promise.all([waitFor(`${a}/readyz`, 20_000), waitFor(`${b}/readyz`, 20_000)]);

      const one = await connect(a);
      const two = await connect(b);
      try {
        const issued = await removeRestriction(one, {});
        const token = (issued.structuredContent as { confirmation?: { token: string } }).confirmation?.token;
        expect(token, textOf(issued)).toBeTruthy();
        const redeemed = await removeRestriction(two, { confirmationToken: token });
        expect(redeemed.structuredContent, textOf(redeemed)).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
        const replayed = await removeRestriction(two, { confirmationToken: token });
        expect(replayed.isError).toBe(true);
        expect(textOf(replayed)).toMatch(/already been used/);
        const again = await removeRestriction(one, { confirmationToken: token });
        expect(textOf(again)).toMatch(/already been used/);
      } finally {
        await one.close();
        await two.close();
      }
    }, 90_000);
  });
});
