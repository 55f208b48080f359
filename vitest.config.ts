import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code (*.test.ts); fast-check properties live in props/ (*.prop.ts).
export default defineConfig({
  test: {
    include: ['**/*.test.ts', 'props/**/*.prop.ts'],
    exclude: ['node_modules/**', '.device/**', 'dist/**'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    // Two cores on CI: files in parallel on both, tests inside a file in order.
    pool: 'forks',
  },
});
