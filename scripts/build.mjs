#!/usr/bin/env node
// `npm run build`: one bundled, minified ESM entry (dist/cli.js) with the MCP SDK, zod and our code, plus
// lazily loaded chunks (MSAL, the simulator) that only a sign-in or --simulator pulls in. Bundling halves
// the cold start of a server an IDE spawns often (see BENCHMARKS.md). Type checking is `tsc --noEmit`.
import { rmSync, chmodSync } from 'node:fs';
import { build } from 'esbuild';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: [new URL('../src/cli.ts', import.meta.url).pathname],
  outdir: new URL('../dist', import.meta.url).pathname,
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
});
chmodSync(new URL('../dist/cli.js', import.meta.url), 0o755);
