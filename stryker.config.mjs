// Mutation testing of the security core (`npm run test:mutation`; scripts/mutation.mjs installs Stryker).
// The score and the surviving mutants judged equivalent are recorded in MUTATION.md.
import { join } from 'node:path';

const plugins = process.env.STRYKER_PLUGIN_DIR ?? 'node_modules';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: [join(plugins, '@stryker-mutator', 'vitest-runner', 'dist', 'src', 'index.js')],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate: ['src/confirmation/**/*.ts', 'src/tools/write-guard.ts', 'src/policy.ts', 'src/audit.ts', 'src/defender/**/*.ts', 'src/approval/**/*.ts', 'src/tools/approve-action.ts', 'src/tools/reject-action.ts', 'src/store/**/*.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: 85 },
  ignorePatterns: ['dist', 'reports', '.cache', 'coverage'],
  // Re-runs test only what changed since the last run (the file is gitignored with reports/).
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
