// The backends the model tests run on: the TypeScript reference always, the native addon when built.
import type { Backend } from '../src/kernels/backend.js';
import { getBackend, nativeUnavailableReason } from '../src/kernels/index.js';

export const tsBackend: Backend = getBackend('typescript');

/** The native backend, or undefined when the addon is not built here. */
export const nativeBackend: Backend | undefined = nativeUnavailableReason() === undefined ? getBackend('native') : undefined;

/** node:test skip option for tests that need the native backend. */
export const needsNative: string | false = nativeBackend ? false : `native backend unavailable: ${nativeUnavailableReason()}`;
