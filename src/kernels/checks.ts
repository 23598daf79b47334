/**
 * Argument checks shared by the TypeScript backend (the native addon repeats them in C++).
 * A wrong length would otherwise read `undefined` (NaN) silently in TypeScript, or write out of
 * bounds in C++; both backends throw a TypeError naming the argument and the length it needs.
 */

/** Throws unless v is a non-negative integer. */
export function checkDim(kernel: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new TypeError(`${kernel}: ${name} must be a non-negative integer, got ${v}`);
  }
}

/** Throws unless a is a Float32Array with at least `need` entries. */
export function checkArray(kernel: string, name: string, a: unknown, need: number): void {
  if (!(a instanceof Float32Array)) {
    throw new TypeError(`${kernel}: ${name} must be a Float32Array`);
  }
  if (a.length < need) {
    throw new TypeError(`${kernel}: ${name} has ${a.length} entries, expected at least ${need}`);
  }
}

/** Entries a row-major [rows, cols] matrix with row stride ld spans; checks ld >= cols. */
export function matrixSpan(kernel: string, name: string, rows: number, cols: number, ld: number): number {
  checkDim(kernel, `ld of ${name}`, ld);
  if (ld < Math.max(1, cols)) {
    throw new TypeError(`${kernel}: row stride of ${name} is ${ld}, expected at least ${Math.max(1, cols)} (its columns)`);
  }
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

/** Throws unless x is a finite number. */
export function checkScalar(kernel: string, name: string, x: number): void {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new TypeError(`${kernel}: ${name} must be a finite number, got ${x}`);
  }
}

/** Checks shared by both attention kernels; returns the number of keys (past + T). */
export function checkAttentionDims(kernel: string, T: number, past: number, H: number, KVH: number, D: number): number {
  checkDim(kernel, 'T', T);
  checkDim(kernel, 'past', past);
  checkDim(kernel, 'H', H);
  checkDim(kernel, 'KVH', KVH);
  checkDim(kernel, 'D', D);
  if (KVH === 0 || H % KVH !== 0) {
    throw new TypeError(`${kernel}: H (${H}) must be a positive multiple of KVH (${KVH})`);
  }
  if (D === 0) throw new TypeError(`${kernel}: D must be positive`);
  return past + T;
}
