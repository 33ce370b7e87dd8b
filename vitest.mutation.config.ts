// The suites that can kill a mutant of the security core, kept lean so each mutant runs in seconds:
// unit tests and the protocol suites that drive the write path. Left out: process tests (they run the
// built dist/, which Stryker does not mutate; so is the rebuild), the fast-check property suite (300
// calls through the server for every mutant it covers; its cases are covered by the write-path suites),
// the remote-mode HTTP suites and the device-code sign-in (auth/ and http/, outside the mutated core).
// The store/ suites (test/unit/store*.test.ts, budget-waits) start their own redis-server where one is installed.
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  test: {
    ...base.test,
    include: [
      'test/unit/**/*.test.ts',
      'test/protocol/{faults,reach,remove-app-restriction,trust,write-path-attacks}.test.ts',
      // The two-person rule (src/approval, tools/approve-action.ts, tools/reject-action.ts) runs in remote mode.
      'test/protocol/{approval,approval-attacks}.test.ts',
      // MDE_MUTATION_SUITES=remote, to mutate src/auth or src/http: the remote-mode suites that kill their mutants.
      ...(process.env.MDE_MUTATION_SUITES === 'remote' ? ['test/protocol/http-{remote,attacks,edge}.test.ts'] : []),
    ],
    globalSetup: [],
  },
});
