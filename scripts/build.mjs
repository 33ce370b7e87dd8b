#!/usr/bin/env node
// `npm run build`: one bundled, minified ESM entry (dist/cli.js) with the MCP SDK, zod and our code, plus
// lazily loaded chunks (MSAL, the simulator, the proxy agent) that only a sign-in, --simulator or a proxy
// setting pulls in. Bundling halves the cold start of a server an IDE spawns often (see BENCHMARKS.md).
// Type checking is `tsc --noEmit`.
//
// Bundling copies third-party code into dist/, so the build also writes, from esbuild's metafile (what
// the bundle really contains, not a hand-kept list), dist/THIRD-PARTY-NOTICES.txt (each package's name,
// version, licence and full licence text) and dist/sbom.cdx.json (a CycloneDX SBOM of the same packages,
// for scanners: `npm audit` cannot see bundled code). A package without a licence text stops the build.
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const NOTICES_FILE = 'dist/THIRD-PARTY-NOTICES.txt';
export const SBOM_FILE = 'dist/sbom.cdx.json';

/** The esbuild options of the shipped bundle (the licence test rebuilds with them to check the notices). */
export const esbuildOptions = {
  entryPoints: [join(ROOT, 'src/cli.ts')],
  outdir: join(ROOT, 'dist'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: false,
  legalComments: 'eof', // keep the bundled packages' license headers in the shipped files
  chunkNames: 'chunks/[name]-[hash]',
  // Bundled CommonJS dependencies (MSAL's jsonwebtoken) call require(): give ESM chunks one, created on
  // first use so that start-up does not pay for it.
  banner: {
    js: "import{createRequire as __mdeCreateRequire}from'node:module';let __mdeRequire;const require=function(id){return(__mdeRequire??=__mdeCreateRequire(import.meta.url))(id)};",
  },
  logLevel: 'warning',
  metafile: true,
};

/**
 * The third-party packages whose code is in the bundle: every package directory (node_modules/<name> or
 * node_modules/@scope/<name>, nested ones included) that contributes bytes to an output file.
 */
export function bundledPackages(metafile, root = ROOT) {
  const dirs = new Set();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const m = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
      if (m && bytesInOutput > 0) dirs.add(m[1]);
    }
  }
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  return [...dirs]
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
      const licence = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? pkg.licenses?.map((l) => l.type ?? l).join(' OR '));
      const files = readdirSync(join(root, dir)).filter((f) => /^(licen[cs]e|copying|notice)([.-].*)?$/i.test(f)).sort();
      // A package published without its licence file (@redis/client): the text from its repository,
      // kept in scripts/licences/<name with + for />.txt.
      const kept = join(ROOT, 'scripts/licences', `${pkg.name.replace('/', '+')}.txt`);
      const licenceText = files.map((f) => readFileSync(join(root, dir, f), 'utf8').trim()).join('\n\n') || (existsSync(kept) ? readFileSync(kept, 'utf8').trim() : '');
      const integrity = lock.packages?.[dir]?.integrity;
      return { dir, name: pkg.name, version: pkg.version, licence, licenceText, integrity, repository: pkg.repository?.url ?? pkg.repository };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

function purl(name, version) {
  const [scope, bare] = name.startsWith('@') ? name.split('/') : [undefined, name];
  return `pkg:npm/${scope ? `${encodeURIComponent(scope)}/` : ''}${bare}@${version}`;
}

export function noticesText(packages, self) {
  const header = [
    `Third-party software in ${self.name} ${self.version}`,
    '',
    `${self.name} bundles the following packages into its dist/ files. Each is listed with its version,`,
    'its licence and the full text of its licence (and notice, if any), as found in the package.',
    `The package's own licence is in LICENSE. A machine-readable list (CycloneDX) is in ${SBOM_FILE.replace('dist/', '')}.`,
  ].join('\n');
  const sections = packages.map((p) =>
    [`${'='.repeat(78)}`, `${p.name} ${p.version}`, `Licence: ${p.licence}`, ...(p.repository ? [`Source: ${p.repository}`] : []), `${'-'.repeat(78)}`, p.licenceText].join('\n'),
  );
  return `${[header, ...sections].join('\n\n')}\n`;
}

export function cycloneDx(packages, self) {
  const licences = (expr) => (/\s(OR|AND|WITH)\s/.test(expr) || expr.startsWith('(') ? [{ expression: expr }] : [{ license: { id: expr } }]);
  const component = (p) => {
    const [group, name] = p.name.startsWith('@') ? p.name.split('/') : [undefined, p.name];
    const sha512 = p.integrity?.startsWith('sha512-') ? Buffer.from(p.integrity.slice(7), 'base64').toString('hex') : undefined;
    return {
      type: 'library',
      'bom-ref': purl(p.name, p.version),
      ...(group ? { group } : {}),
      name,
      version: p.version,
      purl: purl(p.name, p.version),
      licenses: licences(p.licence),
      ...(sha512 ? { hashes: [{ alg: 'SHA-512', content: sha512 }] } : {}),
    };
  };
  // No timestamp or random serial number: the same lock file gives the same SBOM.
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: 'scripts/build.mjs (esbuild metafile)' }] },
      component: { type: 'application', 'bom-ref': purl(self.name, self.version), name: self.name, version: self.version, purl: purl(self.name, self.version), licenses: licences(self.license) },
    },
    components: packages.map(component),
    dependencies: [{ ref: purl(self.name, self.version), dependsOn: packages.map((p) => purl(p.name, p.version)) }],
  };
}

async function main(outdir = join(ROOT, 'dist')) {
  // The output directory is wiped first: never the repository itself or a directory above it.
  if (!relative(outdir, ROOT).startsWith('..') || outdir === ROOT.replace(/\/$/, '')) {
    throw new Error(`Refusing to build into ${outdir}: it holds the repository.`);
  }
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({ ...esbuildOptions, outdir });
  chmodSync(join(outdir, 'cli.js'), 0o755);

  const self = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const packages = bundledPackages(result.metafile);
  const problems = packages.flatMap((p) => [
    ...(p.licenceText ? [] : [`${p.name} ${p.version} (${p.dir}) has no licence file`]),
    ...(p.licence ? [] : [`${p.name} ${p.version} declares no licence in its package.json`]),
    ...(p.integrity ? [] : [`${p.name} ${p.version} has no integrity hash in package-lock.json`]),
  ]);
  if (problems.length > 0) {
    throw new Error(`Cannot write the third-party notices:\n  ${problems.join('\n  ')}\nReview the package's licence before bundling it.`);
  }
  writeFileSync(join(outdir, basename(NOTICES_FILE)), noticesText(packages, self));
  writeFileSync(join(outdir, basename(SBOM_FILE)), `${JSON.stringify(cycloneDx(packages, self), null, 2)}\n`);
}

// `node scripts/build.mjs [--outdir DIR]`: DIR defaults to dist/ (the demo's test builds elsewhere).
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const at = process.argv.indexOf('--outdir');
  try {
    await main(at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : undefined);
  } catch (error) {
    // esbuild has already printed its errors with their source lines; a stack trace would add nothing.
    process.stderr.write(`build failed: ${Array.isArray(error?.errors) ? 'see the errors above.' : (error?.message ?? String(error))}\n`);
    process.exit(1);
  }
}
