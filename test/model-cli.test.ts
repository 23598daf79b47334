// The model commands, run in-process through commander with captured output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerModel } from '../src/cli/model.js';
import { loadModel, saveModelFolder } from '../src/model/load.js';
import { LlamaModel } from '../src/model/llama.js';
import { fullForwardFlops, trainableFlops } from '../bench/model.js';
import { testConfig } from './model-ref.js';
import { tsBackend } from './model-backends.js';
import { randomWeights } from '../src/model/random-init.js';
import { microConfig, tmpDir, writeMicroTokenizer } from './model-load-fixtures.js';

async function run(...args: string[]): Promise<{ out: string; err: string }> {
  let out = '', err = '';
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } });
  registerModel(program, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  await program.parseAsync(['node', 'flag-trader', ...args]);
  return { out, err };
}

test('model info: parameter counts from the config (hand-computed for random:tiny)', async () => {
  const { out } = await run('model', 'info', '--model', 'random:tiny', '--backend', 'typescript', '--json');
  const info = JSON.parse(out) as { parameters: { total: number; perLayer: number; embedding: number; trainableByK: Record<string, number> }; trainableLayers: number; trainableParameters: number; backend: { name: string } };
  // tiny: C 64, 4 layers, 4 heads x 16, 2 KV heads, MLP 172, vocab 259, tied.
  const perLayer = 64 + 64 * 64 + 2 * (32 * 64) + 64 * 64 + 64 + 3 * 172 * 64;
  assert.equal(info.parameters.perLayer, perLayer);
  assert.equal(info.parameters.embedding, 259 * 64);
  assert.equal(info.parameters.total, 259 * 64 + 4 * perLayer + 64);
  assert.equal(info.trainableLayers, 4);
  assert.equal(info.trainableParameters, 4 * perLayer + 64);
  assert.equal(info.parameters.trainableByK['1'], perLayer + 64);
  assert.equal(info.backend.name, 'typescript');
  const text = await run('model', 'info', '--model', 'random:tiny', '--backend', 'typescript', '--trainable-layers', '2');
  assert.match(text.out, /K=2: 90\.9K/);
  assert.match(text.out, /layers 4, heads 4 \(kv 2, dim 16\), mlp 172, vocab 259/);
});

test('model forward prints the full-vocabulary logits of the last position', async () => {
  const { out } = await run('model', 'forward', '--model', 'random:tiny', '--weights-seed', '3', '--ids', '5,17,200', '--backend', 'typescript', '--json');
  const logits = (JSON.parse(out) as { logits: number[] }).logits;
  const loaded = await loadModel('random:tiny', { seed: 3 });
  assert.equal(logits.length, loaded.config.vocab_size);
  const m = new LlamaModel(loaded.config, loaded.weights, tsBackend, { trainableLayers: 1 });
  const expected = m.fullLogits(m.forward([5, 17, 200]));
  assert.deepEqual(logits, Array.from(expected));
  await assert.rejects(run('model', 'forward', '--model', 'random:tiny', '--ids', '5,x'), /--ids: item 2 of "5,x" is "x", expected an integer >= 0/);
  await assert.rejects(run('model', 'forward', '--model', 'random:tiny', '--ids', '5,259', '--backend', 'typescript'), /ids\[1\] = 259 is not a token id \(expected an integer in 0\.\.258\)/);
  await assert.rejects(run('model', 'info', '--model', 'random:tiny', '--threads', '0'), /--threads must be a positive integer, got "0"/);
  await assert.rejects(run('model', 'info', '--model', 'random:tiny', '--trainable-layers', '5', '--backend', 'typescript'), /trainableLayers must be an integer in 1\.\.4/);
});

test('generate: greedy output equals the model\'s generate; sampling is seeded', async () => {
  const loaded = await loadModel('random:tiny');
  const m = new LlamaModel(loaded.config, loaded.weights, tsBackend, { trainableLayers: 1 });
  const ids = loaded.tokenizer.encode(loaded.tokenizer.applyChatTemplate([{ role: 'user', content: 'buy or sell?' }]));
  const expected = m.generate(ids, { maxNewTokens: 6, stopIds: [loaded.tokenizer.eosId, 2] });
  const { out } = await run('generate', '--model', 'random:tiny', '--prompt', 'buy or sell?', '--chat', '--max-new-tokens', '6', '--backend', 'typescript', '--json');
  const res = JSON.parse(out) as { promptTokens: number; tokens: number[]; finish: string };
  assert.equal(res.promptTokens, ids.length);
  assert.deepEqual(res.tokens, expected.tokens);
  const s1 = await run('generate', '--model', 'random:tiny', '--prompt', 'hi', '--temperature', '1', '--seed', '4', '--max-new-tokens', '8', '--backend', 'typescript', '--json');
  const s2 = await run('generate', '--model', 'random:tiny', '--prompt', 'hi', '--temperature', '1', '--seed', '4', '--max-new-tokens', '8', '--backend', 'typescript', '--json');
  assert.equal(s1.out, s2.out);
  await assert.rejects(run('generate', '--model', 'random:tiny', '--prompt', 'hi', '--temperature', '-1'), /--temperature must be a number >= 0, got "-1"/);
});

test('benchmark FLOP counts follow the layer shapes', () => {
  // One layer, T = 2, top row only, C 48, HD 48, KVD 16, F 80, H 6, D 8:
  // k,v: 2*2*48*32; q,o: 2*1*48*48*2; mlp: 2*1*48*80*3; attention: 4*6*8*(2 keys)
  const c = testConfig(true, { num_hidden_layers: 1 });
  const layer = 2 * 2 * 48 * 32 + 2 * 48 * 48 * 2 + 2 * 48 * 80 * 3 + 4 * 6 * 8 * 2;
  assert.equal(fullForwardFlops(c, 2), layer + 2 * 3 * 48);
  assert.equal(trainableFlops(c, 2, 1), 3 * layer);
});

test('bench runs end to end on a tiny model and reports consistent figures', async () => {
  const { out } = await run('bench', '--model', 'random:tiny', '--lengths', '12', '--repeats', '1', '--trainable-layers', '2', '--backend', 'typescript', '--threads', '1', '--json');
  const r = JSON.parse(out) as { backend: string; blas: string; threads: number; sgemmGflops: number; lengths: Array<{ T: number; sgemmShapeGflops: number; fullForward: { medianS: number; gflop: number; gflops: number; fractionOfSgemm: number }; trainableFwdBwd: { medianS: number }; rolloutStep: { prefixTokens: number }; breakdown: { fullForward: Array<[string, number]> } }>; peakRssMB: number };
  assert.equal(r.backend, 'typescript');
  assert.equal(r.blas, 'typescript kernels');
  assert.equal(r.threads, 1);
  const l = r.lengths[0]!;
  assert.equal(l.T, 12);
  assert.equal(l.rolloutStep.prefixTokens, 7);
  assert.ok(Math.abs(l.fullForward.gflops - l.fullForward.gflop / l.fullForward.medianS) < 1e-9 * l.fullForward.gflops);
  assert.ok(Math.abs(l.fullForward.fractionOfSgemm - l.fullForward.gflops / l.sgemmShapeGflops) < 1e-9);
  assert.ok(r.sgemmGflops > 0);
  assert.ok(l.breakdown.fullForward.some(([k]) => k.startsWith('sgemm')));
  assert.ok(r.peakRssMB > 0);
  await assert.rejects(run('bench', '--lengths', '300,0'), /--lengths: item 2 of "300,0" is "0", expected an integer >= 1/);
});

test('option parsers name the option and what they expected', async () => {
  const { positiveInt, nonNegativeInt, nonNegativeNumber, intList, backendChoice } = await import('../src/util/options.js');
  assert.equal(positiveInt('--n')('12'), 12);
  assert.throws(() => positiveInt('--n')('1.5'), /--n must be a positive integer, got "1\.5"/);
  assert.throws(() => positiveInt('--n')('abc'), /--n must be a positive integer, got "abc"/);
  assert.equal(nonNegativeInt('--k')('0'), 0);
  assert.throws(() => nonNegativeInt('--k')('-3'), /--k must be an integer >= 0, got "-3"/);
  assert.equal(nonNegativeNumber('--t')('0.7'), 0.7);
  assert.throws(() => nonNegativeNumber('--t')(''), /--t must be a number >= 0, got ""/);
  assert.throws(() => nonNegativeNumber('--t')('inf'), /--t must be a number >= 0, got "inf"/);
  assert.deepEqual(intList('--ids')('3, 4,5'), [3, 4, 5]);
  assert.throws(() => intList('--ids')(''), /--ids: item 1 of "" is "", expected an integer >= 0/);
  assert.throws(() => intList('--ids')('1,,2'), /--ids: item 2 of "1,,2" is ""/);
  assert.equal(backendChoice('native'), 'native');
  assert.throws(() => backendChoice('gpu'), /--backend must be native, typescript or auto, got "gpu"/);
  await assert.rejects(run('generate', '--model', 'random:tiny', '--prompt', 'x', '--top-k', 'many'), /--top-k must be an integer >= 0, got "many"/);
  await assert.rejects(run('model', 'info', '--model', 'random:nope'), /unknown built-in config "nope"/);
});

test('model forward / generate refuse a model folder whose weights hold NaN, naming the file and the tensor', async () => {
  const dir = tmpDir();
  try {
    const config = microConfig();
    const w = randomWeights(config, 1);
    w.layers[0]!.o[9] = NaN;
    writeMicroTokenizer(dir);
    saveModelFolder(dir, config, w);
    const want = new RegExp(`${join(dir, 'model.safetensors').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensor "model\\.layers\\.0\\.self_attn\\.o_proj\\.weight" \\[8, 8\\] holds 1 non-finite value \\(first: NaN at \\[1, 1\\]\\)`);
    await assert.rejects(run('model', 'forward', '--model', dir, '--ids', '5,17', '--backend', 'typescript', '--json'), want);
    await assert.rejects(run('generate', '--model', dir, '--prompt', 'ab', '--max-new-tokens', '2', '--backend', 'typescript'), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
