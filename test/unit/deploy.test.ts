/**
 * The shipped deployment artefacts, checked offline: the kustomize base and the dev Redis overlay against
 * the Kubernetes schemas (kubernetes-models), the Dockerfile linted (dockerfile-utils) and held to the
 * image's rules, server.json and the MCP Bundle manifest (mcpb validate) consistent with package.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../src/settings.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const pkg = JSON.parse(read('package.json'));
const serverJson = JSON.parse(read('server.json'));
type K8s = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

/**
 * A small kustomize: the resources of a kustomization (files, or other kustomizations), then its images
 * and JSON 6902 patches of the kinds these manifests use. `kubectl kustomize` gives the same, when present.
 */
function render(dir: string): K8s[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const objects: K8s[] = [];
  for (const r of k.resources as string[]) {
    const path = join(dir, r);
    if (r.endsWith('.yaml')) objects.push(...parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as K8s));
    else objects.push(...render(path));
  }
  for (const image of k.images ?? []) {
    for (const o of objects) for (const c of o.spec?.template?.spec?.containers ?? []) if (c.image === image.name) c.image = `${image.newName}:${image.newTag}`;
  }
  for (const p of k.patches ?? []) {
    for (const o of objects.filter((x) => x.kind === p.target.kind && x.metadata.name === p.target.name)) {
      for (const op of parse(p.patch) as { op: string; path: string; value: unknown }[]) {
        expect(op.op).toBe('replace');
        const keys = op.path.split('/').slice(1);
        const last = keys.pop()!;
        const parent = keys.reduce((at: any, key) => at[key], o);
        expect(parent[last], op.path).toBeDefined();
        parent[last] = op.value;
      }
    }
  }
  return objects;
}

const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};
function validateAll(objects: K8s[]): void {
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    expect(Model, `${o.apiVersion} ${o.kind} has no schema check here`).toBeDefined();
    new Model!(o).validate();
  }
}

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const base = render(join(ROOT, 'deploy/kubernetes/base'));
  const deployment = base.find((o) => o.kind === 'Deployment')!;
  const container = deployment.spec.template.spec.containers[0];
  const envNames = new Set(SETTINGS.map((s) => s.env).filter(Boolean));

  it('the base is valid against the Kubernetes schemas, and a broken copy is not', () => {
    expect(base.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    validateAll(base);
    const broken = structuredClone(deployment);
    broken.spec.replicas = '2';
    delete broken.spec.template;
    expect(() => new Deployment(broken).validate()).toThrow(/template|replicas/);
  });

  it('the dev Redis overlay renders and is valid, with MDE_REDIS_URL pointed at its Redis Service', () => {
    const dev = render(join(ROOT, 'deploy/kubernetes/dev-redis'));
    validateAll(dev);
    const app = dev.find((o) => o.kind === 'Deployment' && o.metadata.name === deployment.metadata.name)!;
    const redisService = dev.find((o) => o.kind === 'Service' && o.metadata.name === 'mde-dev-redis')!;
    expect(app.spec.template.spec.containers[0].env.find((e: any) => e.name === 'MDE_REDIS_URL')).toEqual({ name: 'MDE_REDIS_URL', value: `redis://${redisService.metadata.name}:6379` });
  });

  it('two replicas or more, a PodDisruptionBudget and a Service selecting them', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    for (const kind of ['Service', 'PodDisruptionBudget']) {
      const o = base.find((x) => x.kind === kind)!;
      expect(o.spec.selector.matchLabels ?? o.spec.selector, kind).toEqual(labels);
    }
    expect(base.find((o) => o.kind === 'PodDisruptionBudget')!.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
  });

  it('exec probes that name /healthz (liveness) and /readyz (readiness) through the image\'s healthcheck', () => {
    expect(container.livenessProbe.exec.command).toEqual(['/usr/local/bin/node', '/app/healthcheck.mjs', '/healthz']);
    expect(container.readinessProbe.exec.command).toEqual(['/usr/local/bin/node', '/app/healthcheck.mjs', '/readyz']);
  });

  it('non-root, read-only root, all capabilities dropped, no privilege escalation, resources set', () => {
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
  });

  it('settings from the ConfigMap are real settings; the credential, the confirmation key and the Redis URL come from a Secret', () => {
    const configMap = base.find((o) => o.kind === 'ConfigMap')!;
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    for (const name of Object.keys(configMap.data)) expect(envNames, name).toContain(name);
    const secrets = new Set(SETTINGS.filter((s) => s.secret).map((s) => s.env));
    for (const name of Object.keys(configMap.data)) expect(secrets.has(name), `${name} is a secret, not a ConfigMap value`).toBe(false);
    for (const name of ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'MDE_CONFIRMATION_KEY', 'MDE_REDIS_URL']) {
      const e = container.env.find((x: any) => x.name === name);
      expect(e?.valueFrom?.secretKeyRef, name).toMatchObject({ name: expect.any(String), key: name });
      expect(envNames).toContain(name);
    }
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));

  it('lints clean (dockerfile-utils), and the linter finds problems when there are some', () => {
    expect(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    expect(lintDockerfile('FROM node:24-bookworm-slim\nEXPOSE 99999\nHEALTHCHECK\n').length).toBeGreaterThan(0);
  });

  it('official node:<major>-bookworm-slim by tag, no digest, no latest; a scratch runtime', () => {
    const froms = lines.filter((l) => /^FROM /i.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(froms).toEqual(['node:24-bookworm-slim', 'scratch']);
    expect(text).not.toMatch(/@sha256:|:latest\b/);
  });

  it('numeric non-root USER, HEALTHCHECK through node, exec-form ENTRYPOINT of the server, remote mode on 0.0.0.0', () => {
    expect(lines.filter((l) => /^USER /.test(l))).toEqual(['USER 1000']);
    expect(lines).toContain('HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/node", "/app/healthcheck.mjs"]');
    expect(lines).toContain('ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cli.js"]');
    expect(lines.some((l) => /^CMD /.test(l))).toBe(false);
    expect(text).toMatch(/MDE_TRANSPORT=http/);
    expect(text).toMatch(/MDE_HTTP_HOST=0\.0\.0\.0/);
    expect(text).toMatch(/MDE_HTTP_PORT=8080/);
  });

  it('OCI labels: source, version (package.json), licences, and the MCP server name of server.json', () => {
    const label = (name: string) => new RegExp(`${name.replace(/\./g, '\\.')}="([^"]*)"`).exec(text)?.[1];
    expect(label('org.opencontainers.image.source')).toBe(pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, ''));
    expect(/ARG VERSION=(\S+)/.exec(text)?.[1]).toBe(pkg.version);
    expect(label('org.opencontainers.image.version')).toBe('${VERSION}');
    expect(label('org.opencontainers.image.licenses')).toBe(pkg.license);
    expect(label('io.modelcontextprotocol.server.name')).toBe(serverJson.name);
  });

  it('the health check script follows MDE_HTTP_PORT and answers with its exit code', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'healthcheck.mjs'), '/healthz'], { env: { ...process.env, MDE_HTTP_PORT: '1', MDE_HTTP_HOST: '0.0.0.0' }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\/healthz on 127\.0\.0\.1:1: connect ECONNREFUSED/);
  });
});

describe('MCP registry entry (server.json) and MCP Bundle (manifest.json)', () => {
  it('server.json: current schema, name == package.json mcpName, description within 100 characters, versions of package.json', () => {
    expect(serverJson.$schema).toBe('https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json');
    expect(serverJson.name).toBe(pkg.mcpName);
    expect(serverJson.name).toMatch(/^io\.github\.[^/]+\/[a-z0-9-]+$/);
    expect(serverJson.description.length).toBeLessThanOrEqual(100);
    expect(serverJson.version).toBe(pkg.version);
    const npm = serverJson.packages.find((p: any) => p.registryType === 'npm');
    expect(npm).toMatchObject({ identifier: pkg.name, version: pkg.version, transport: { type: 'stdio' } });
    const oci = serverJson.packages.find((p: any) => p.registryType === 'oci');
    expect(oci.identifier).toMatch(new RegExp(`:${pkg.version.replace(/\./g, '\\.')}$`));
    expect(serverJson.repository.url).toBe(pkg.homepage.replace(/#readme$/, ''));
  });

  it('every secret setting a package lists is marked isSecret, and every variable is a real setting', () => {
    const secrets = new Set(SETTINGS.filter((s) => s.secret).map((s) => s.env));
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const p of serverJson.packages) {
      for (const v of p.environmentVariables) {
        expect(known, v.name).toContain(v.name);
        if (secrets.has(v.name)) expect(v.isSecret, v.name).toBe(true);
      }
    }
  });

  const mcpb = join(ROOT, 'node_modules/@anthropic-ai/mcpb/dist/cli/cli.js');
  const validateManifest = (path: string) => spawnSync(process.execPath, [mcpb, 'validate', path], { encoding: 'utf8' });

  it('manifest.json passes mcpb validate, and a broken copy does not', () => {
    const ok = validateManifest(join(ROOT, 'manifest.json'));
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'mde-mcpb-'));
    try {
      const broken = JSON.parse(read('manifest.json'));
      delete broken.server.mcp_config;
      broken.user_config.client_secret.type = 'password';
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(broken));
      expect(validateManifest(join(dir, 'manifest.json')).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('the bundle\'s form: its version and entry are package.json\'s, every secret is sensitive, every variable is a real setting', () => {
    const manifest = JSON.parse(read('manifest.json'));
    expect(manifest.version).toBe(pkg.version);
    expect(manifest.name).toBe(pkg.name);
    expect(manifest.server.entry_point).toBe(pkg.bin[pkg.name]);
    expect(manifest.user_config.client_secret).toMatchObject({ sensitive: true });
    const secrets = new Set(SETTINGS.filter((s) => s.secret).map((s) => s.env));
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const [name, value] of Object.entries(manifest.server.mcp_config.env as Record<string, string>)) {
      expect(known, name).toContain(name);
      const field = /^\$\{user_config\.(\w+)\}$/.exec(value)?.[1];
      expect(manifest.user_config[field!], name).toBeDefined();
      if (secrets.has(name)) expect(manifest.user_config[field!].sensitive, name).toBe(true);
    }
    expect(pkg.scripts.bundle).toBeDefined();
  });
});
