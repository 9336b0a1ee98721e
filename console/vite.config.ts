/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The console is served under /console/ by `raas local` and by CloudFront; hash routes keep deep
// links working without server rewrites. The dev proxy is for `npm run dev` only: the built app
// calls the API named in config.json.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    manifest: true,
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { '/v1': 'http://127.0.0.1:8099' },
  },
  preview: {
    proxy: { '/v1': 'http://127.0.0.1:8099' },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
