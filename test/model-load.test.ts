import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync, readFileSync, existsSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseLlamaConfig, toHfConfigJson } from '../src/model/parse-config.js';
import { BUILTIN_CONFIGS, SMOLLM2_135M, TINY, parameterCount, builtinConfig } from '../src/model/configs.js';
import { randomWeights } from '../src/model/random-init.js';
import { loadModel, saveModelFolder, saveTensors, loadTensors, weightsToTensors } from '../src/model/load.js';
import { writeSafetensors, f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, type Tensor } from '../src/model/safetensors.js';
import { tensorManifest, type LlamaWeights } from '../src/model/weights.js';
import type { LlamaConfig } from '../src/model/config.js';
import { BYTE_VOCAB_SIZE } from '../src/model/tokenizer.js';
import { needsModels, modelsPath } from './shared-paths.js';
import { tmpDir, microConfig, writeMicroTokenizer } from './model-load-fixtures.js';

const SMOL_CONFIG = ['smollm2-135m-instruct', 'config.json'];

function withTmp(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = tmpDir();
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

function flat(w: LlamaWeights): Float32Array[] {
  return [w.embed, ...w.layers.flatMap((l) => [l.inputNorm, l.q, l.k, l.v, l.o, l.postNorm, l.gate, l.up, l.down]), w.norm, ...(w.lmHead ? [w.lmHead] : [])];
}

function assertWeightsEqual(a: LlamaWeights, b: LlamaWeights, round: (x: number) => number = (x) => x): void {
  const fa = flat(a), fb = flat(b);
  assert.equal(fa.length, fb.length);
  assert.equal(a.lmHead === null, b.lmHead === null);
  fa.forEach((x, i) => assert.deepEqual(Array.from(fb[i]!), Array.from(x, round), `tensor ${i}`));
}

/** Random weights with distinct, non-trivial norm weights (so a swapped tensor would show). */
function microWeights(config: LlamaConfig, seed = 3): LlamaWeights {
  const w = randomWeights(config, seed);
  w.norm.forEach((_, i) => { w.norm[i] = 1 + i / 16; });
  w.layers.forEach((l, j) => { l.inputNorm.fill(0.5 + j); l.postNorm.fill(2 + j); });
  return w;
}

// ---------------------------------------------------------------------------------------------
// config.json parsing

test('the shared SmolLM2 config.json parses to exactly the built-in smollm2-135m config', { skip: needsModels(...SMOL_CONFIG) }, () => {
  const path = modelsPath(...SMOL_CONFIG);
  const c = parseLlamaConfig(JSON.parse(readFileSync(path, 'utf8')), path);
  assert.deepEqual(c, SMOLLM2_135M);
  assert.equal(c.head_dim, 64);
});

test('missing optional fields take Hugging Face LlamaConfig defaults', () => {
  const c = parseLlamaConfig({ hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 300 }, 'min.json');
  assert.deepEqual(c, {
    hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4,
    vocab_size: 300, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
    head_dim: 16, initializer_range: 0.02,
  });
  // An explicit head_dim wins over hidden/heads; null ids are dropped; a one-element eos list is unwrapped.
  const d = parseLlamaConfig({ hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 300,
    head_dim: 32, pad_token_id: null, eos_token_id: [7], num_key_value_heads: null }, 'd.json');
  assert.equal(d.head_dim, 32);
  assert.equal(d.eos_token_id, 7);
  assert.equal(d.num_key_value_heads, 4);
  assert.ok(!('pad_token_id' in d));
});

test('config errors name the source and the field', () => {
  const base = { hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300 };
  const cases: Array<[unknown, RegExp]> = [
    [[1], /c\.json: a model config must be a JSON object, got an array/],
    [{ ...base, hidden_size: undefined }, /c\.json: invalid model config: field "hidden_size"/],
    [{ ...base, num_hidden_layers: 2.5 }, /field "num_hidden_layers"/],
    [{ ...base, vocab_size: -1 }, /field "vocab_size"/],
    [{ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /c\.json: field "rope_scaling\.low_freq_factor": undefined is not a positive number \(required by rope_type "llama3"\)/],
    [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /c\.json: field "rope_scaling": rope_type "yarn" is not supported; supported: default, linear, llama3/],
    [{ ...base, architectures: ['GemmaForCausalLM'] }, /field "architectures": \["GemmaForCausalLM"\] is not supported; supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/],
    [{ ...base, model_type: 'gemma' }, /field "model_type": "gemma" is not supported; supported model types: llama, mistral, qwen2, qwen3/],
    [{ ...base, hidden_act: 'gelu' }, /field "hidden_act": "gelu" is not supported/],
    [{ ...base, rope_interleaved: true }, /field "rope_interleaved"/],
    [{ ...base, attention_dropout: 0.1 }, /field "attention_dropout": 0\.1 is not supported/],
    [{ ...base, num_key_value_heads: 3 }, /field "num_key_value_heads": num_attention_heads 4 is not divisible by num_key_value_heads 3/],
    [{ ...base, hidden_size: 66 }, /field "hidden_size": 66 is not divisible by num_attention_heads 4/],
    [{ ...base, head_dim: 7 }, /field "head_dim": 7 is odd/],
    [{ ...base, eos_token_id: [] }, /field "eos_token_id": an empty list/],
    [{ ...base, eos_token_id: [1, 300] }, /field "eos_token_id": 300 is outside the vocabulary/],
    [{ ...base, bos_token_id: 300 }, /field "bos_token_id": 300 is outside the vocabulary \(vocab_size 300\)/],
  ];
  for (const [json, re] of cases) assert.throws(() => parseLlamaConfig(json, 'c.json'), re, JSON.stringify(json));
});

test('toHfConfigJson round-trips through parseLlamaConfig for every built-in config', () => {
  for (const [name, c] of Object.entries(BUILTIN_CONFIGS)) assert.deepEqual(parseLlamaConfig(toHfConfigJson(c), name), c);
});

// ---------------------------------------------------------------------------------------------
// built-in configs and random weights

test('built-in configs: parameter counts match the tensor manifest, byte vocab for tiny', () => {
  for (const c of Object.values(BUILTIN_CONFIGS)) {
    const fromManifest = tensorManifest(c).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(parameterCount(c), fromManifest);
  }
  // SmolLM2-135M: 49152*576 embedding + 30 layers * (2*576 + 576*576*2 + 576*192*2 + 3*576*1536) + 576.
  assert.equal(parameterCount(SMOLLM2_135M), 49152 * 576 + 30 * (1152 + 663552 + 221184 + 2654208) + 576);
  assert.equal(TINY.vocab_size, BYTE_VOCAB_SIZE);
  assert.throws(() => builtinConfig('huge'), /unknown built-in model config "huge"; expected one of smollm2-135m, small, tiny/);
  const copy = builtinConfig('tiny');
  copy.hidden_size = 1;
  assert.equal(TINY.hidden_size, 64, 'builtinConfig returns a copy');
});

test('random weights: deterministic per seed, right shapes, N(0, initializer_range), norms 1', () => {
  const c = { ...builtinConfig('tiny'), initializer_range: 0.05 };
  const a = randomWeights(c, 42), b = randomWeights(c, 42), d = randomWeights(c, 43);
  assertWeightsEqual(a, b);
  assert.notDeepEqual(Array.from(a.embed.subarray(0, 50)), Array.from(d.embed.subarray(0, 50)));
  const tensors = weightsToTensors(c, a); // checks every shape against the manifest
  assert.equal(tensors.length, tensorManifest(c).length);
  assert.equal(a.lmHead, null);
  for (const l of a.layers) { assert.ok(l.inputNorm.every((x) => x === 1)); assert.ok(l.postNorm.every((x) => x === 1)); }
  assert.ok(a.norm.every((x) => x === 1));
  const all = [a.embed, ...a.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down])];
  let n = 0, s = 0, s2 = 0, s4 = 0;
  for (const t of all) for (const x of t) { n++; s += x; s2 += x * x; s4 += x ** 4; }
  const sd = Math.sqrt(s2 / n);
  assert.ok(Math.abs(s / n) < 0.002, `mean ${s / n}`);
  assert.ok(Math.abs(sd - 0.05) < 0.001, `sd ${sd}`);
  assert.ok(Math.abs(s4 / n / sd ** 4 - 3) < 0.1, 'kurtosis of a normal is 3');
  const untied = randomWeights({ ...c, tie_word_embeddings: false }, 42);
  assert.ok(untied.lmHead && untied.lmHead.length === c.vocab_size * c.hidden_size);
  assert.notDeepEqual(Array.from(untied.lmHead.subarray(0, 20)), Array.from(untied.embed.subarray(0, 20)));
});

// ---------------------------------------------------------------------------------------------
// model folders

for (const dtype of ['F32', 'F16', 'BF16'] as const) {
  for (const tied of [true, false]) {
    for (const sharded of [false, true]) {
      test(`folder round trip: ${dtype}, ${tied ? 'tied' : 'untied'}, ${sharded ? 'sharded' : 'single file'}`, withTmp(async (dir) => {
        const config = microConfig({ tie_word_embeddings: tied });
        const w = microWeights(config);
        writeMicroTokenizer(dir);
        saveModelFolder(dir, config, w, { dtype, ...(sharded ? { maxShardBytes: 1200 } : {}) });
        if (sharded) {
          assert.ok(!existsSync(join(dir, 'model.safetensors')));
          const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
          const shards = new Set(Object.values(index.weight_map));
          assert.ok(shards.size >= 3, `${shards.size} shards`);
          assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort(), [...shards].sort());
          assert.equal(index.metadata.total_size, tensorManifest(config).reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0) * (dtype === 'F32' ? 4 : 2));
        }
        const m = await loadModel(dir);
        assert.equal(m.source, 'folder');
        assert.equal(m.spec, dir);
        assert.deepEqual(m.config, config);
        assert.equal(m.tokenizer.kind, 'hf');
        const round = dtype === 'F32' ? (x: number) => x : dtype === 'F16' ? (x: number) => f16ToF32(f32ToF16(x)) : (x: number) => bf16ToF32(f32ToBf16(x));
        assertWeightsEqual(w, m.weights, round);
        assert.match(m.fingerprint, /^[0-9a-f]{64}$/);
      }));
    }
  }
}

test('fingerprint: stable across loads, changes with any weight byte or the tokenizer', withTmp(async (dir) => {
  const config = microConfig();
  writeMicroTokenizer(dir);
  saveModelFolder(dir, config, microWeights(config));
  const a = await loadModel(dir), b = await loadModel(dir);
  assert.equal(a.fingerprint, b.fingerprint);
  const file = join(dir, 'model.safetensors');
  const bytes = readFileSync(file);
  bytes[bytes.length - 1]! ^= 1;
  writeFileSync(file, bytes);
  const c = await loadModel(dir);
  assert.notEqual(c.fingerprint, a.fingerprint);
  const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  tj.model.merges = [];
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  assert.notEqual((await loadModel(dir)).fingerprint, c.fingerprint);
}));

/** Write a folder whose single safetensors file holds `tensors` (the manifest, edited by the test). */
function writeFolder(dir: string, config: LlamaConfig, edit: (t: Array<[string, Tensor]>) => Array<[string, Tensor]>): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfigJson(config)));
  writeMicroTokenizer(dir);
  writeSafetensors(join(dir, 'model.safetensors'), edit(weightsToTensors(config, microWeights(config))));
}

test('checkpoint errors list missing, mis-shaped and unexpected tensors', withTmp(async (dir) => {
  const config = microConfig({ tie_word_embeddings: false });
  writeFolder(dir, config, (ts) => ts
    .filter(([n]) => n !== 'model.layers.1.mlp.up_proj.weight' && n !== 'lm_head.weight')
    .map(([n, t]): [string, Tensor] => n === 'model.layers.0.self_attn.k_proj.weight' ? [n, { shape: [8, 4], data: t.data.subarray(0, 32) }] : [n, t])
    .concat([['model.layers.0.self_attn.q_proj.bias', { shape: [8], data: new Float32Array(8) }]]));
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.ok(e.message.startsWith(`${dir}: checkpoint does not match the config`), e.message);
    assert.match(e.message, /missing tensors: model\.layers\.1\.mlp\.up_proj\.weight \[12, 8\]; lm_head\.weight \[264, 8\]/);
    assert.match(e.message, /wrong shapes: model\.layers\.0\.self_attn\.k_proj\.weight: expected \[4, 8\], got \[8, 4\]/);
    assert.match(e.message, /unexpected tensors: model\.layers\.0\.self_attn\.q_proj\.bias/);
    return true;
  });
}));

test('rotary inv_freq buffers are ignored; a tied lm_head must equal the embedding', withTmp(async (dir) => {
  const config = microConfig();
  const w = microWeights(config);
  writeFolder(dir, config, (ts) => [...ts,
    ['model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: new Float32Array([1, 0.01]) }],
    ['lm_head.weight', { shape: [264, 8], data: w.embed.slice() }]]);
  const m = await loadModel(dir);
  assertWeightsEqual(w, m.weights);
  const other = w.embed.slice();
  other[5]! += 1;
  writeFolder(dir, config, (ts) => [...ts, ['lm_head.weight', { shape: [264, 8], data: other }]]);
  await assert.rejects(loadModel(dir), /config ties word embeddings, but lm_head\.weight \[264, 8\] differs from model\.embed_tokens\.weight/);
}));

test('shard index errors: a tensor in two shards, or listed in the wrong shard', withTmp(async (dir) => {
  const config = microConfig();
  writeMicroTokenizer(dir);
  saveModelFolder(dir, config, microWeights(config), { maxShardBytes: 1200 });
  const indexPath = join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));
  const first = index.weight_map['model.embed_tokens.weight'];
  const second = index.weight_map['model.norm.weight'];
  assert.notEqual(first, second);
  index.weight_map['model.norm.weight'] = first;
  writeFileSync(indexPath, JSON.stringify(index));
  await assert.rejects(loadModel(dir), new RegExp(`disagrees with the shards: model\\.norm\\.weight is listed in ${first.replace(/\./g, '\\.')} but is in ${second.replace(/\./g, '\\.')}`));
  index.weight_map['model.norm.weight'] = second;
  writeFileSync(indexPath, JSON.stringify(index));
  writeSafetensors(join(dir, first), [['model.norm.weight', { shape: [8], data: new Float32Array(8) }], ['model.embed_tokens.weight', { shape: [264, 8], data: new Float32Array(264 * 8) }]]);
  await assert.rejects(loadModel(dir), /tensor "model\.norm\.weight" appears in both .* and /);
  index.weight_map.x = '../evil.safetensors';
  writeFileSync(indexPath, JSON.stringify(index));
  await assert.rejects(loadModel(dir), /weight_map\["x"\]: shard file name "\.\.\/evil\.safetensors" is not a plain \*\.safetensors file name/);
}));

test('folder errors: no config, bad config, no weights, no tokenizer, tokenizer too big, not a folder', withTmp(async (dir) => {
  const config = microConfig();
  const w = microWeights(config);
  const sub = (name: string) => { const d = join(dir, name); mkdirSync(d); return d; };

  const noConfig = sub('noconfig');
  await assert.rejects(loadModel(noConfig), new RegExp(`${noConfig}: model folder has no config\\.json`));

  const badConfig = sub('badconfig');
  writeFileSync(join(badConfig, 'config.json'), '{"hidden_size": 8,');
  await assert.rejects(loadModel(badConfig), /badconfig\/config\.json: the model config is not valid JSON/);
  writeFileSync(join(badConfig, 'config.json'), JSON.stringify({ ...toHfConfigJson(config), rope_scaling: { factor: 2 } }));
  await assert.rejects(loadModel(badConfig), /badconfig\/config\.json: field "rope_scaling"/);

  const noWeights = sub('noweights');
  writeFileSync(join(noWeights, 'config.json'), JSON.stringify(toHfConfigJson(config)));
  writeMicroTokenizer(noWeights);
  await assert.rejects(loadModel(noWeights), /noweights: model folder has neither model\.safetensors nor model\.safetensors\.index\.json/);

  const noTok = sub('notok');
  saveModelFolder(noTok, config, w);
  await assert.rejects(loadModel(noTok), /notok: model folder has no tokenizer\.json \(pass tokenizerPath/);
  const tokDir = sub('tok');
  writeMicroTokenizer(tokDir);
  const m = await loadModel(noTok, { tokenizerPath: tokDir });
  assert.equal(m.tokenizer.vocabSize, 260);
  await assert.rejects(loadModel(noTok, { tokenizerPath: join(tokDir, 'nope.json') }), /nope\.json: tokenizer file not found/);

  const small = sub('smallvocab');
  const smallConfig = microConfig({ vocab_size: 100 });
  saveModelFolder(small, smallConfig, microWeights(smallConfig));
  writeMicroTokenizer(small);
  await assert.rejects(loadModel(small), /smallvocab: the tokenizer has 260 ids but the model's vocab_size is 100/);

  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'x');
  await assert.rejects(loadModel(file), /plain\.txt: expected a model folder/);
  await assert.rejects(loadModel('no such thing'), /model "no such thing" is not a local folder, a random:.* spec, nor a Hub id/);
}));

// ---------------------------------------------------------------------------------------------
// random specs

test('random:tiny: byte tokenizer, deterministic weights and fingerprint per seed', async () => {
  const a = await loadModel('random:tiny', { seed: 7 }), b = await loadModel('random:tiny', { seed: 7 });
  const c = await loadModel('random:tiny', { seed: 8 });
  assert.equal(a.source, 'random');
  assert.equal(a.tokenizer.kind, 'bytes');
  assert.deepEqual(a.config, TINY);
  assertWeightsEqual(a.weights, b.weights);
  assertWeightsEqual(a.weights, randomWeights(TINY, 7));
  assert.equal(a.fingerprint, b.fingerprint);
  assert.notEqual(a.fingerprint, c.fingerprint);
  const d = await loadModel('random:tiny');
  assert.equal(d.fingerprint, (await loadModel('random:tiny', { seed: 0 })).fingerprint, 'seed defaults to 0');
  const small = await loadModel('random:small');
  assert.equal(small.config.num_hidden_layers, 6);
  await assert.rejects(loadModel('random:huge'), /model spec "random:huge": unknown built-in config "huge"/);
});

test('random:<config.json> uses a tokenizer.json beside it, else bytes when the vocabulary fits', withTmp(async (dir) => {
  const config = microConfig();
  const cfgPath = join(dir, 'config.json');
  writeFileSync(cfgPath, JSON.stringify(toHfConfigJson(config)));
  const bytes = await loadModel(`random:${cfgPath}`, { seed: 1 });
  assert.equal(bytes.tokenizer.kind, 'bytes');
  assert.deepEqual(bytes.config, config);
  writeMicroTokenizer(dir);
  const hf = await loadModel(`random:${cfgPath}`, { seed: 1 });
  assert.equal(hf.tokenizer.kind, 'hf');
  assert.notEqual(hf.fingerprint, bytes.fingerprint);
  assertWeightsEqual(hf.weights, bytes.weights);
  const dirSpec = await loadModel(`random:${dir}/`, { seed: 1 });
  assert.equal(dirSpec.fingerprint, hf.fingerprint);

  const tooSmall = join(dir, 'small');
  mkdirSync(tooSmall);
  writeFileSync(join(tooSmall, 'config.json'), JSON.stringify(toHfConfigJson(microConfig({ vocab_size: 100 }))));
  await assert.rejects(loadModel(`random:${join(tooSmall, 'config.json')}`), /no tokenizer\.json, and the byte-level tokenizer needs vocab_size >= 259 \(config has 100\)/);
  await assert.rejects(loadModel(`random:${join(dir, 'missing.json')}`), /missing\.json: cannot read the model config/);
}));

test('random:<the shared SmolLM2 config.json, 2 layers> with the shared tokenizer', { skip: needsModels('smollm2-135m-instruct', 'tokenizer.json') }, withTmp(async (dir) => {
  // The shared config.json reduced to 2 layers keeps the test fast while using the real vocabulary.
  const tokenizerPath = modelsPath('smollm2-135m-instruct', 'tokenizer.json');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(modelsPath(...SMOL_CONFIG), 'utf8')), num_hidden_layers: 2 }));
  const m = await loadModel(`random:${join(dir, 'config.json')}`, { tokenizerPath });
  assert.equal(m.tokenizer.kind, 'hf');
  assert.equal(m.tokenizer.vocabSize, 49152);
  assert.equal(m.weights.embed.length, 49152 * 576);
}));

// ---------------------------------------------------------------------------------------------
// trainable-parameter checkpoints

test('saveTensors / loadTensors round trip, with an expected-set check', withTmp((dir) => {
  const path = join(dir, 'ckpt', 'trainable.safetensors');
  const tensors: Record<string, Tensor> = {
    'model.layers.3.mlp.up_proj.weight': { shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) },
    'policy_head.weight': { shape: [2], data: new Float32Array([-1e-30, 3e38]) },
  };
  saveTensors(path, tensors, { step: '12' });
  const back = loadTensors(path);
  assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
  for (const [k, t] of Object.entries(tensors)) {
    assert.deepEqual(back[k]!.shape, t.shape);
    assert.deepEqual(Array.from(back[k]!.data), Array.from(t.data));
  }
  const ok = loadTensors(path, [['policy_head.weight', [2]], ['model.layers.3.mlp.up_proj.weight', [3, 2]]]);
  assert.equal(Object.keys(ok).length, 2);
  assert.throws(() => loadTensors(path, [['policy_head.weight', [3]], ['value_head.weight', [4]]]),
    /trainable\.safetensors: checkpoint does not match the config: missing tensors: value_head\.weight \[4\] \| wrong shapes: policy_head\.weight: expected \[3\], got \[2\] \| unexpected tensors: model\.layers\.3\.mlp\.up_proj\.weight/);
}));

test('NaN or Inf in model weights: loading fails naming the file and the tensor (single file, F16 overflow, shards, loadTensors)', withTmp(async (dir) => {
  const config = microConfig();
  writeFolder(dir, config, (ts) => ts.map(([n, t]): [string, Tensor] => {
    if (n !== 'model.layers.1.mlp.up_proj.weight') return [n, t];
    const data = t.data.slice();
    data[3 * 8 + 5] = NaN;
    return [n, { shape: t.shape, data }];
  }));
  const file = join(dir, 'model.safetensors');
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.equal(e.message, `${file}: tensor "model.layers.1.mlp.up_proj.weight" [12, 8] holds 1 non-finite value (first: NaN at [3, 5]); expected finite weights: the file is corrupt or the weights diverged`);
    return true;
  });

  // F16 storage of a value beyond its range gives +Inf; in shards, the shard holding it is named.
  const w = microWeights(config);
  w.embed[7] = 1e6;
  w.norm[2] = -1e6;
  rmSync(file);
  saveModelFolder(dir, config, w, { dtype: 'F16', maxShardBytes: 1200 });
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')).weight_map as Record<string, string>;
  await assert.rejects(loadModel(dir), new RegExp(`${index['model.embed_tokens.weight']!.replace(/\./g, '\\.')}: tensor "model\\.embed_tokens\\.weight" \\[264, 8\\] holds 1 non-finite value \\(first: Infinity at \\[0, 7\\]\\)`));
  w.embed[7] = 0;
  saveModelFolder(dir, config, w, { dtype: 'F16', maxShardBytes: 1200 });
  await assert.rejects(loadModel(dir), new RegExp(`${index['model.norm.weight']!.replace(/\./g, '\\.')}: tensor "model\\.norm\\.weight" \\[8\\] holds 1 non-finite value \\(first: -Infinity at \\[2\\]\\)`));

  const path = join(dir, 'trainable.safetensors');
  saveTensors(path, { 'value_head.weight': { shape: [2, 2], data: new Float32Array([0, 1, Infinity, NaN]) } });
  assert.throws(() => loadTensors(path), /trainable\.safetensors: tensor "value_head\.weight" \[2, 2\] holds 2 non-finite values \(first: Infinity at \[1, 0\]\)/);
}));

test('eos_token_id as a list (Llama 3.x): the first id is the EOS, every id is kept for generation, and it writes back as a list', () => {
  const json = { hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 128256,
    bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] };
  const c = parseLlamaConfig(json, 'llama3.json');
  assert.equal(c.eos_token_id, 128001);
  assert.deepEqual(c.eos_token_ids, [128001, 128008, 128009]);
  assert.deepEqual(toHfConfigJson(c).eos_token_id, [128001, 128008, 128009]);
  assert.deepEqual(parseLlamaConfig(toHfConfigJson(c), 'back'), c);
  // A one-id list stays a plain id (and the config keeps the fields it always had).
  const one = parseLlamaConfig({ ...json, eos_token_id: [128009] }, 'one.json');
  assert.equal(one.eos_token_id, 128009);
  assert.ok(!('eos_token_ids' in one));
  // Repeated ids count once.
  assert.deepEqual(parseLlamaConfig({ ...json, eos_token_id: [5, 5, 6] }, 'dup.json').eos_token_ids, [5, 6]);
});
