import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  f16ToF32, bf16ToF32, f32ToF16, f32ToBf16, readSafetensors, readSafetensorsHeader, writeSafetensors, SafetensorsFile,
} from '../src/model/safetensors.js';
import { Rng } from '../src/util/rng.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'flag-st-'));
}

/** Build a safetensors file by hand: header object + raw data bytes. */
function handMade(header: unknown, data: Uint8Array, padTo8 = true): Buffer {
  let json = Buffer.from(JSON.stringify(header));
  if (padTo8 && json.length % 8) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

function u16le(...vals: number[]): Uint8Array {
  const b = Buffer.alloc(vals.length * 2);
  vals.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return b;
}

/** Float64 value of a binary16 from its fields: an independent reference for the bit tricks. */
function halfValue(h: number): number {
  const s = h >> 15 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

test('f16 -> f32 on hand-computed bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
    [0x0400, 2 ** -14], // smallest normal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  for (const [bits, v] of cases) assert.equal(f16ToF32(bits), v, `0x${bits.toString(16)}`);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0x7c01)));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Object.is(f16ToF32(0x0000), 0));
});

test('f16 -> f32 matches the field formula for all 65536 patterns', () => {
  for (let h = 0; h < 65536; h++) {
    const want = halfValue(h), got = f16ToF32(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `0x${h.toString(16)}`);
    else assert.ok(Object.is(got, want), `0x${h.toString(16)}: ${got} vs ${want}`);
  }
});

test('bf16 -> f32 on hand-computed bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x3f80, 1], [0xc040, -3], [0x3eab, 0.333984375], [0x7f80, Infinity], [0xff80, -Infinity],
    [0x0001, 2 ** -133], // smallest subnormal
    [0x0080, 2 ** -126], // smallest normal
  ];
  for (const [bits, v] of cases) assert.equal(bf16ToF32(bits), v, `0x${bits.toString(16)}`);
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
});

test('f32 -> f16 rounds to nearest even, with overflow, underflow and specials', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00], [-2, 0xc000], [1 / 3, 0x3555], [65504, 0x7bff],
    [1 + 2 ** -11, 0x3c00], // tie, 0x3c00 even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [2.5 * 2 ** -24, 0x0002],
    [1023.5 * 2 ** -24, 0x0400], // largest subnormal rounds up into the smallest normal
    [-(2 ** -26), 0x8000], [1e-8, 0x0000],
    [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0x0000], [-0, 0x8000],
  ];
  for (const [v, bits] of cases) assert.equal(f32ToF16(v), bits, `${v} -> 0x${f32ToF16(v).toString(16)}, want 0x${bits.toString(16)}`);
  const nan = f32ToF16(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

test('f32 -> f16 agrees with a brute-force nearest-half search on random floats', () => {
  // All finite non-negative halves, ascending: the reference rounding is a search in this table.
  const halves: Array<[number, number]> = [];
  for (let h = 0; h < 0x7c00; h++) halves.push([halfValue(h), h]);
  const rng = new Rng(5);
  const f = new Float32Array(1);
  for (let k = 0; k < 20000; k++) {
    f[0] = (rng.uniform() < 0.5 ? -1 : 1) * 2 ** (rng.uniform() * 46 - 28); // 2^-28 .. 2^18
    const x = f[0]!, ax = Math.abs(x);
    let want: number;
    if (ax >= 65520) want = 0x7c00;
    else {
      let lo = 0, hi = halves.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (halves[mid]![0] <= ax) lo = mid; else hi = mid; }
      const [vl, bl] = halves[lo]!, [vh, bh] = halves[hi]!;
      const dl = ax - vl, dh = vh - ax;
      want = dl < dh ? bl : dh < dl ? bh : (bl % 2 === 0 ? bl : bh);
    }
    if (x < 0) want |= 0x8000;
    assert.equal(f32ToF16(x), want, `${x}`);
  }
});

test('f32 -> bf16 rounds to nearest even, with overflow and specials', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3f80], [-3, 0xc040], [1 / 3, 0x3eab],
    [1 + 2 ** -8, 0x3f80], // tie -> even
    [1 + 3 * 2 ** -8, 0x3f82],
    [3.4028234663852886e38, 0x7f80], // float32 max rounds up to inf
    [Infinity, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000], [2 ** -133, 0x0001],
  ];
  for (const [v, bits] of cases) assert.equal(f32ToBf16(v), bits, `${v}`);
  const nan = f32ToBf16(NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
});

test('reads a hand-made file in F32, F16 and BF16 with metadata and an empty tensor', () => {
  const dir = tmp();
  try {
    const f32 = Buffer.alloc(12);
    [1.5, -2.25, 1e-3].forEach((v, i) => f32.writeFloatLE(v, i * 4));
    const f16 = u16le(0x3c00, 0xc000, 0x0001, 0x7c00);
    const bf16 = u16le(0x3f80, 0xc040);
    const data = Buffer.concat([f32, f16, bf16]);
    const header = {
      __metadata__: { format: 'pt', note: 'hand made' },
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F16', shape: [2, 2], data_offsets: [12, 20] },
      c: { dtype: 'BF16', shape: [2, 1], data_offsets: [20, 24] },
      d: { dtype: 'F32', shape: [0, 4], data_offsets: [24, 24] },
    };
    const path = join(dir, 'x.safetensors');
    writeFileSync(path, handMade(header, data, false)); // unpadded header: data region unaligned
    const { tensors, metadata } = readSafetensors(path);
    assert.deepEqual(metadata, { format: 'pt', note: 'hand made' });
    assert.deepEqual([...tensors.keys()], ['a', 'b', 'c', 'd']);
    assert.deepEqual(Array.from(tensors.get('a')!.data), [1.5, -2.25, Math.fround(1e-3)]);
    assert.deepEqual(tensors.get('b')!.shape, [2, 2]);
    assert.deepEqual(Array.from(tensors.get('b')!.data), [1, -2, 2 ** -24, Infinity]);
    assert.deepEqual(Array.from(tensors.get('c')!.data), [1, -3]);
    assert.equal(tensors.get('c')!.dtype, 'BF16');
    assert.equal(tensors.get('d')!.data.length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('write -> read round trips in F32 exactly and in F16/BF16 to the rounded values', () => {
  const dir = tmp();
  try {
    const rng = new Rng(11);
    const w = new Float32Array(6 * 5).map(() => rng.normal() * 3);
    const v = new Float32Array([0, -0, 1e-7, 7e4, -1 / 3]);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const path = join(dir, `m-${dtype}.safetensors`);
      writeSafetensors(path, { 'w.weight': { shape: [6, 5], data: w }, v: { shape: [5], data: v } }, { dtype, metadata: { k: 'v' } });
      const raw = readFileSync(path);
      assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
      const h = readSafetensorsHeader(path);
      assert.equal(h.tensors.get('w.weight')!.dtype, dtype);
      assert.deepEqual(h.metadata, { k: 'v' });
      const { tensors } = readSafetensors(path);
      const round = dtype === 'F32' ? (x: number) => x : dtype === 'F16' ? (x: number) => halfValue(f32ToF16(x)) : (x: number) => bf16ToF32(f32ToBf16(x));
      assert.deepEqual(Array.from(tensors.get('w.weight')!.data), Array.from(w, round));
      assert.deepEqual(Array.from(tensors.get('v')!.data), Array.from(v, round));
    }
    // The atomic writer leaves no temporary files behind.
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('half tensors larger than one read chunk convert correctly across chunk boundaries', () => {
  const dir = tmp();
  try {
    const n = (1 << 22) + 3;
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = (i * 7919) & 0x7bff; // finite halves, varied
    const path = join(dir, 'big.safetensors');
    writeFileSync(path, handMade({ h: { dtype: 'F16', shape: [n], data_offsets: [0, n * 2] } }, new Uint8Array(bits.buffer)));
    const f = SafetensorsFile.open(path);
    const t = f.read('h');
    f.close();
    for (const i of [0, 1, (1 << 22) - 1, 1 << 22, n - 1]) assert.equal(t.data[i], halfValue(bits[i]!), `element ${i}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corrupt files give errors naming the file and tensor', () => {
  const dir = tmp();
  try {
    const p = (name: string, bytes: Uint8Array) => { const path = join(dir, name); writeFileSync(path, bytes); return path; };
    const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['short.safetensors', new Uint8Array(5), /short\.safetensors: truncated: 5 bytes/],
      ['longhdr.safetensors', (() => { const b = Buffer.alloc(20); b.writeBigUInt64LE(1000n); return b; })(), /longhdr\.safetensors: header length 1000 runs past the end of the file \(20 bytes\)/],
      ['badjson.safetensors', handMade('x', new Uint8Array(0)).fill(0x7b, 8, 9), /badjson\.safetensors: the header is not valid JSON/],
      ['array.safetensors', handMade([1, 2], new Uint8Array(0)), /array\.safetensors: the header must be a JSON object/],
      ['trunc.safetensors', handMade(ok, new Uint8Array(4)), /trunc\.safetensors: tensor "t": data_offsets \[0, 8\] run past the data region \(4 bytes\)/],
      ['size.safetensors', handMade({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(12)), /size\.safetensors: tensor "t": data_offsets \[0, 8\] hold 8 bytes, but shape \[3\] of F32 needs 12/],
      ['overlap.safetensors', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap\.safetensors: tensor "b" data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/],
      ['dtype.safetensors', handMade({ t: { dtype: 'F17', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype\.safetensors: tensor "t": unknown dtype "F17"/],
      ['shape.safetensors', handMade({ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)), /shape\.safetensors: tensor "t": shape \[-2\] must be a list of non-negative integers/],
      ['offs.safetensors', handMade({ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(8)), /offs\.safetensors: tensor "t": data_offsets \[8,0\] must be \[begin, end\]/],
      ['meta.safetensors', handMade({ __metadata__: { n: 1 }, ...ok }, new Uint8Array(8)), /meta\.safetensors: __metadata__ must be an object of string values/],
    ];
    for (const [name, bytes, re] of cases) {
      const path = p(name, bytes);
      assert.throws(() => readSafetensors(path), re, name);
    }
    assert.throws(() => readSafetensors(join(dir, 'absent.safetensors')), /absent\.safetensors: cannot open the safetensors file/);
    // A dtype the format defines but the loader cannot convert: the header parses, reading refuses.
    const i64 = p('i64.safetensors', handMade({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    assert.equal(readSafetensorsHeader(i64).tensors.get('t')!.dtype, 'I64');
    assert.throws(() => readSafetensors(i64), /i64\.safetensors: tensor "t" has dtype I64; only F32, F16, BF16 can be loaded/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the writer refuses inconsistent tensors', () => {
  const dir = tmp();
  try {
    const path = join(dir, 'w.safetensors');
    assert.throws(() => writeSafetensors(path, { a: { shape: [2, 3], data: new Float32Array(5) } }), /w\.safetensors: tensor "a": shape \[2,3\] has 6 elements but the data has 5/);
    assert.throws(() => writeSafetensors(path, { __metadata__: { shape: [1], data: new Float32Array(1) } }), /reserved/);
    assert.throws(() => writeSafetensors(path, [['a', { shape: [1], data: new Float32Array(1) }], ['a', { shape: [1], data: new Float32Array(1) }]]), /tensor "a" given twice/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the finite option refuses NaN and +-Inf in F32, F16 and BF16 tensors (also past a half chunk), naming file and tensor', () => {
  const dir = tmp();
  try {
    const path = join(dir, 'w.safetensors');
    for (const [dtype, bad, shown] of [['F32', NaN, 'NaN'], ['F16', Infinity, 'Infinity'], ['BF16', -Infinity, '-Infinity']] as const) {
      const big = new Float32Array((1 << 22) + 10).fill(0.5); // more than one 4M-element read chunk
      big[(1 << 22) + 7] = bad;
      writeSafetensors(path, [['ok', { shape: [2], data: new Float32Array([1, -1]) }], ['w', { shape: [2, (1 << 21) + 5], data: big }]], { dtype });
      assert.equal(readSafetensors(path).tensors.get('w')!.data[(1 << 22) + 7], bad, 'read as it is without the option');
      assert.throws(() => readSafetensors(path, { finite: true }),
        new RegExp(`w\\.safetensors: tensor "w" \\[2, ${(1 << 21) + 5}\\] holds 1 non-finite value \\(first: ${shown} at \\[1, ${(1 << 21) + 2}\\]\\); expected finite weights`), `${dtype} ${shown}`);
      const f = SafetensorsFile.open(path);
      try { assert.deepEqual(Array.from(f.read('ok', { finite: true }).data), [1, -1]); } finally { f.close(); }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
