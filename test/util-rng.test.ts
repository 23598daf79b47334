import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/rng.js';

test('same seed gives the same stream; different seeds differ', () => {
  const a = new Rng(7), b = new Rng(7), c = new Rng(8);
  const xa = Array.from({ length: 100 }, () => a.uniform());
  const xb = Array.from({ length: 100 }, () => b.uniform());
  const xc = Array.from({ length: 100 }, () => c.uniform());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

test('uniform and normal have the right moments', () => {
  const r = new Rng(1);
  const n = 200000;
  let su = 0, sn = 0, sn2 = 0;
  for (let i = 0; i < n; i++) { const u = r.uniform(); assert.ok(u >= 0 && u < 1); su += u; const z = r.normal(); sn += z; sn2 += z * z; }
  assert.ok(Math.abs(su / n - 0.5) < 0.005);
  assert.ok(Math.abs(sn / n) < 0.01);
  assert.ok(Math.abs(sn2 / n - 1) < 0.02);
});

test('state round-trips so a restored generator continues the stream exactly', () => {
  const r = new Rng(3);
  for (let i = 0; i < 11; i++) r.normal(); // leaves a spare normal pending
  const saved = JSON.parse(JSON.stringify(r.getState()));
  const expected = Array.from({ length: 20 }, () => r.normal());
  const q = new Rng(999);
  q.setState(saved);
  assert.deepEqual(Array.from({ length: 20 }, () => q.normal()), expected);
});

test('categorical follows its weights', () => {
  const r = new Rng(5);
  const counts = [0, 0, 0];
  for (let i = 0; i < 30000; i++) counts[r.categorical([1, 2, 7])]!++;
  assert.ok(Math.abs(counts[0]! / 30000 - 0.1) < 0.01);
  assert.ok(Math.abs(counts[2]! / 30000 - 0.7) < 0.015);
});
