// The native addon against the same float64 references and finite differences; skipped (with the
// reason) when the addon is not built.
import { loadNativeAddon, NativeBackend } from '../src/kernels/native.js';
import { defineBackendTests } from './kernels-suite.js';

let backend: NativeBackend | undefined;
let skip: string | false = false;
try {
  backend = new NativeBackend(loadNativeAddon());
} catch (e) {
  skip = (e as Error).message;
}
defineBackendTests('native', () => backend!, skip);
