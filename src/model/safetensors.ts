// The safetensors file format, read and written by hand.
//
// Layout: 8 bytes little-endian u64 N, then N bytes of JSON header
//   { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ..., "__metadata__": {..} }
// then the data region; offsets are relative to its start (byte 8 + N). Tensors are row-major,
// little-endian. Reading converts F32, F16 and BF16 to Float32Array; other dtypes are recognised
// (for size checks) but refused when read. Tensor data may not overlap or run past the file; gaps
// between tensors are tolerated (they hold no tensor and are never read).
//
// Finite check: readers of weights (model folders, policy files, checkpoints) pass `{ finite: true }`,
// and a NaN or +-Inf anywhere in a tensor is then an error naming the file and the tensor. The check
// is one pass over each tensor (a chunk of halves right after its conversion, while it is in cache).
//
// Memory: tensors are read one by one straight from the file into their final Float32Array (halves
// through a bounded chunk), so loading a 540 MB model needs 540 MB, not twice that.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { endianness } from 'node:os';
import { writeFileAtomic } from '../util/atomic.js';

/** Bytes per element of every dtype the format defines. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

export type FloatDtype = 'F32' | 'F16' | 'BF16';
export const READABLE_DTYPES: readonly FloatDtype[] = ['F32', 'F16', 'BF16'];

/** safetensors' own limit on the header size; a larger length means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range in the data region (relative to dataStart), end exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  /** Absolute file offset of the data region (8 + header length). */
  dataStart: number;
  /** Tensors in header order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');

// ---------------------------------------------------------------------------------------------
// Half-precision conversions (bit-exact, round-to-nearest-even)

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** IEEE binary16 bits -> binary32 bits (exact: every half is a float). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN, payload kept
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // signed zero
  // Subnormal half mant * 2^-24: shift left until the implicit bit (0x400) appears.
  let e = 113; // exponent field of 2^-14 in binary32
  while ((mant & 0x400) === 0) { mant <<= 1; e--; }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let f16Table: Float32Array | null = null;
/** All 65536 halves as floats, built once (256 KB): conversion is then one lookup. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    f16Table = new Float32Array(bits.buffer);
  }
  return f16Table;
}

export function f16ToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

export function bf16ToF32(b: number): number {
  u32Buf[0] = (b & 0xffff) << 16;
  return f32Buf[0]!;
}

/** binary32 bits -> binary16 bits, round to nearest even; overflow -> inf; NaN stays NaN. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const he = exp - 112; // half exponent field (127 -> 15 bias)
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000; // implicit bit
    const shift = 14 - he; // 14..24
    let hm = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (hm & 1))) hm++; // may carry into the smallest normal: correct
    return sign | hm;
  }
  let r = sign | (he << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++; // a carry may reach inf: correct
  return r;
}

export function f32ToF16(v: number): number {
  f32Buf[0] = v;
  return f32BitsToF16Bits(u32Buf[0]!);
}

/** binary32 -> bfloat16 bits, round to nearest even; NaN stays (quiet) NaN. */
function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16(v: number): number {
  f32Buf[0] = v;
  return f32BitsToBf16Bits(u32Buf[0]!);
}

/** Convert an array of halves (given as their bits) into out[offset..]. */
export function f16ArrayToF32(src: Uint16Array, out: Float32Array, offset = 0): void {
  const t = f16ToF32Table();
  for (let i = 0; i < src.length; i++) out[offset + i] = t[src[i]!]!;
}

export function bf16ArrayToF32(src: Uint16Array, out: Float32Array, offset = 0): void {
  const o = new Uint32Array(out.buffer, out.byteOffset + offset * 4, src.length);
  for (let i = 0; i < src.length; i++) o[i] = src[i]! << 16;
}

export function f32ArrayToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

export function f32ArrayToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function readExactly(fd: number, buf: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`${path}: truncated while reading ${what} (${done} of ${buf.length} bytes at offset ${position})`);
    done += n;
  }
}

function parseHeader(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new Error(`${path}: truncated: ${fileSize} bytes, but a safetensors file starts with an 8-byte header length`);
  const lenBuf = new Uint8Array(8);
  readExactly(fd, lenBuf, 0, path, 'the header length');
  const headerLen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
  if (headerLen > fileSize - 8) {
    throw new Error(`${path}: header length ${headerLen} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`);
  }
  if (headerLen > MAX_HEADER_BYTES) throw new Error(`${path}: header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLen < 2) throw new Error(`${path}: header length ${headerLen} is too small for a JSON object`);
  const headerBuf = new Uint8Array(headerLen);
  readExactly(fd, headerBuf, 8, path, 'the header');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBuf));
  } catch (e) {
    throw new Error(`${path}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${path}: the header must be a JSON object`);

  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
        throw new Error(`${path}: __metadata__ must be an object of string values`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const where = `${path}: tensor "${name}"`;
    if (typeof value !== 'object' || value === null) throw new Error(`${where}: entry must be an object with dtype, shape, data_offsets`);
    const { dtype, shape, data_offsets: offs } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZES)) {
      throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}; the format defines ${Object.keys(DTYPE_SIZES).join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(offs)} must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offs as [number, number];
    const expected = numel(shape) * DTYPE_SIZES[dtype]!;
    if (end - begin !== expected) {
      throw new Error(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ${JSON.stringify(shape)} of ${dtype} needs ${expected}`);
    }
    if (end > dataSize) {
      throw new Error(`${where}: data_offsets [${begin}, ${end}] run past the data region (${dataSize} bytes): file truncated or offsets out of range`);
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin, end });
  }
  // Overlap check on the non-empty ranges in file order.
  const ranges = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const a = ranges[i - 1]!, b = ranges[i]!;
    if (b.begin < a.end) {
      throw new Error(`${path}: tensor "${b.name}" data_offsets [${b.begin}, ${b.end}] overlap tensor "${a.name}" [${a.begin}, ${a.end}]`);
    }
  }
  return { path, fileSize, dataStart, tensors, metadata };
}

/** Read and check only the header of a safetensors file. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openFile(path);
  try { return parseHeader(fd, path); } finally { closeSync(fd); }
}

function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new Error(`${path}: cannot open the safetensors file: ${(e as Error).message}`);
  }
}

const HALF_CHUNK = 1 << 22; // elements per read when converting halves (8 MB)

export interface ReadOptions {
  /** Refuse a tensor holding NaN or +-Inf (an error naming the file and the tensor). Default false. */
  finite?: boolean;
}

/**
 * True when data[from..to) holds only finite values. One branch-free pass: x * 0 is 0 for every
 * finite x and NaN for NaN and +-Inf, so the sum stays 0 exactly when all values are finite.
 */
export function allFinite(data: Float32Array, from = 0, to = data.length): boolean {
  let acc = 0;
  for (let i = from; i < to; i++) acc += data[i]! * 0;
  return acc === 0;
}

/** The error for a tensor holding non-finite values (counted and located here, off the fast path). */
export function nonFiniteError(path: string, name: string, shape: number[], data: Float32Array): Error {
  let count = 0, first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) { count++; if (first < 0) first = i; }
  }
  const index: number[] = [];
  for (let rem = first, k = shape.length - 1; k >= 0; k--) { index.unshift(rem % shape[k]!); rem = Math.floor(rem / shape[k]!); }
  return new Error(`${path}: tensor "${name}" [${shape.join(', ')}] holds ${count} non-finite value${count === 1 ? '' : 's'} `
    + `(first: ${data[first]} at [${index.join(', ')}]); expected finite weights: the file is corrupt or the weights diverged`);
}

/** An open safetensors file whose tensors are read one at a time. Call close() when done. */
export class SafetensorsFile {
  readonly header: SafetensorsHeader;
  private fd: number | null;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
    try {
      this.header = parseHeader(fd, path);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(path, openFile(path));
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor "${name}"`);
    return t;
  }

  /** The tensor as float32 (converted from F16/BF16); with `finite`, NaN or +-Inf is an error. */
  read(name: string, opts: ReadOptions = {}): Tensor {
    if (this.fd === null) throw new Error(`${this.path}: file already closed`);
    const t = this.info(name);
    if (!(READABLE_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new Error(`${this.path}: tensor "${name}" has dtype ${t.dtype}; only ${READABLE_DTYPES.join(', ')} can be loaded`);
    }
    const n = numel(t.shape);
    const out = new Float32Array(n);
    const pos = this.header.dataStart + t.begin;
    const what = `tensor "${name}"`;
    if (t.dtype === 'F32') {
      readExactly(this.fd, new Uint8Array(out.buffer), pos, this.path, what);
      if (opts.finite && !allFinite(out)) throw nonFiniteError(this.path, name, t.shape, out);
    } else {
      const chunk = new Uint16Array(Math.min(n, HALF_CHUNK));
      const convert = t.dtype === 'F16' ? f16ArrayToF32 : bf16ArrayToF32;
      for (let i = 0; i < n; i += chunk.length) {
        const m = Math.min(chunk.length, n - i);
        const view = chunk.subarray(0, m);
        readExactly(this.fd, new Uint8Array(view.buffer, 0, m * 2), pos + i * 2, this.path, what);
        convert(view, out, i);
        if (opts.finite && !allFinite(out, i, i + m)) throw nonFiniteError(this.path, name, t.shape, out);
      }
    }
    return { shape: [...t.shape], data: out };
  }

  /**
   * The tensor as bfloat16 bits (src/model/bf16.ts): BF16 as stored, F32 and F16 rounded to nearest
   * even, read in chunks so that no float32 copy of the whole tensor is made. With `finite`, NaN or
   * +-Inf (of the stored values) is an error.
   */
  readBf16(name: string, opts: ReadOptions = {}): { shape: number[]; data: Uint16Array } {
    if (this.fd === null) throw new Error(`${this.path}: file already closed`);
    const t = this.info(name);
    if (!(READABLE_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new Error(`${this.path}: tensor "${name}" has dtype ${t.dtype}; only ${READABLE_DTYPES.join(', ')} can be loaded`);
    }
    const n = numel(t.shape);
    const out = new Uint16Array(n);
    const pos = this.header.dataStart + t.begin;
    const what = `tensor "${name}"`;
    const size = t.dtype === 'F32' ? 4 : 2;
    const chunk = Math.min(n, HALF_CHUNK);
    const raw = new Uint8Array(chunk * size);
    const f32 = new Float32Array(chunk);
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const bytes = raw.subarray(0, m * size);
      readExactly(this.fd, bytes, pos + i * size, this.path, what);
      const vals = f32.subarray(0, m);
      if (t.dtype === 'F32') vals.set(new Float32Array(bytes.buffer, 0, m));
      else if (t.dtype === 'F16') f16ArrayToF32(new Uint16Array(bytes.buffer, 0, m), vals);
      else bf16ArrayToF32(new Uint16Array(bytes.buffer, 0, m), vals);
      if (opts.finite && !allFinite(vals)) throw nonFiniteError(this.path, name, t.shape, vals);
      if (t.dtype === 'BF16') out.set(new Uint16Array(bytes.buffer, 0, m), i);
      else out.set(f32ArrayToBf16(vals), i);
    }
    return { shape: [...t.shape], data: out };
  }

  close(): void {
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }
}

/** Read every tensor of a file (as float32) and its metadata. */
export function readSafetensors(path: string, opts: ReadOptions = {}): { tensors: Map<string, Tensor & { dtype: string }>; metadata: Record<string, string> } {
  const f = SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, Tensor & { dtype: string }>();
    for (const name of f.names()) tensors.set(name, { ...f.read(name, opts), dtype: f.info(name).dtype });
    return { tensors, metadata: f.header.metadata };
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface WriteOptions {
  /** Storage dtype (default F32). F16/BF16 round to nearest even. */
  dtype?: FloatDtype;
  metadata?: Record<string, string>;
}

/**
 * Write tensors (in the given order) to a safetensors file, atomically. The header is padded with
 * spaces to a multiple of 8 bytes so that the data region is aligned, as the reference writer does.
 */
export function writeSafetensors(path: string, tensors: Iterable<[string, Tensor]> | Record<string, Tensor>, opts: WriteOptions = {}): void {
  writeFileAtomic(path, encodeSafetensors(path, tensors, opts));
}

/** The bytes writeSafetensors writes (for callers that hash them before writing); `path` names errors. */
export function encodeSafetensors(path: string, tensors: Iterable<[string, Tensor]> | Record<string, Tensor>, opts: WriteOptions = {}): Buffer {
  const dtype = opts.dtype ?? 'F32';
  if (!(READABLE_DTYPES as readonly string[]).includes(dtype)) throw new Error(`${path}: cannot write dtype ${dtype}; expected one of ${READABLE_DTYPES.join(', ')}`);
  const entries: Array<[string, Tensor]> = Symbol.iterator in tensors
    ? [...(tensors as Iterable<[string, Tensor]>)] : Object.entries(tensors as Record<string, Tensor>);
  const size = DTYPE_SIZES[dtype]!;
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`${path}: "__metadata__" is reserved and cannot name a tensor`);
    if (seen.has(name)) throw new Error(`${path}: tensor "${name}" given twice`);
    seen.add(name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${path}: tensor "${name}": shape ${JSON.stringify(t.shape)} must be non-negative integers`);
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`${path}: tensor "${name}": shape ${JSON.stringify(t.shape)} has ${numel(t.shape)} elements but the data has ${t.data.length}`);
    }
    const bytes = t.data.length * size;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.allocUnsafe(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const [, t] of entries) {
    const src = dtype === 'F32' ? t.data : dtype === 'F16' ? f32ArrayToF16(t.data) : f32ArrayToBf16(t.data);
    const b = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}
