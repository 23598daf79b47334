// The TypeScript reference backend against float64 references and finite differences.
import { TypeScriptBackend } from '../src/kernels/typescript.js';
import { defineBackendTests } from './kernels-suite.js';

const backend = new TypeScriptBackend();
defineBackendTests('typescript', () => backend, false);
