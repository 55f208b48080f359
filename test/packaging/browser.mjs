// A web page's script (test/packaging.test.ts bundles it with esbuild for the browser from the
// project that installed the tarball, where no optional peer is installed).
import { adamw, createOptimizer } from 'flashoptim';

const opt = await createOptimizer(adamw({ lr: 1e-3 }), { w: new Float32Array(256).fill(0.5) });
await opt.step({ w: new Float32Array(256).fill(0.01) });
document.body.textContent = `${opt.memory().bytesPerParam} bytes per parameter`;
