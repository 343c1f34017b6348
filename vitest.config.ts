// vitest: which files are tests, the services they talk to, and build/ for the process tests.
import { defineConfig } from 'vitest/config';

// Services the tests talk to: the ones this machine runs (PostgreSQL with
// trust auth, Mosquitto, Redis). .ci/run sets these explicitly; the defaults make
// `npm test` work the same on a developer's machine of this kind.
process.env.SEALPOST_TEST_PG_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
process.env.SEALPOST_TEST_MQTT_URL ??= 'mqtt://127.0.0.1:1883';
process.env.SEALPOST_TEST_REDIS_URL ??= 'redis://127.0.0.1:6379';
process.env.SEALPOST_TEST_CHROMIUM ??= '/usr/bin/chromium';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Process tests run bin/sealpost.mjs, which runs build/: compile it first when the sources are newer.
    globalSetup: ['./test/helpers/build-fresh.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
