// The suites a mutant of src/ can fail: unit and protocol tests import src/ directly. Process tests run
// the built bundle (dist/), which Stryker does not mutate, so they are left out (and so is the rebuild);
// so is the device-code sign-in suite (auth/, outside the mutated core; its fake HTTPS endpoint does
// not answer under Stryker's Node 22 sandbox).
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({ test: { ...base.test, include: ['test/unit/**/*.test.ts', 'test/protocol/**/*.test.ts'], exclude: ['test/protocol/device-code.test.ts'], globalSetup: [] } });
