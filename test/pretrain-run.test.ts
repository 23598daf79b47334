// `flag-trader pretrain` end to end on a tiny model: the corpus and its cutoff, the held-out loss falling
// well below ln(vocabulary), the Hugging Face output folder reloading with identical logits, and a
// bit-identical resume.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCorpus, packDocuments, parseTextSource, splitHeldOut, type CorpusSource } from '../src/pretrain/corpus.js';
import { parsePretrainConfig, scheduledLr } from '../src/pretrain/config.js';
import { pretrain } from '../src/pretrain/pretrain.js';
import { loadModel } from '../src/model/load.js';
import { LlamaModel } from '../src/model/llama.js';
import { ByteTokenizer, loadHfTokenizer } from '../src/model/tokenizer.js';
import { getBackend } from '../src/kernels/index.js';
import { repoRoot } from './shared-paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-pretrain-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const JSONL = join(TMP, 'news.jsonl');
writeFileSync(JSONL, [
  { text: 'ACME raises its outlook on strong demand.', date: '2020-09-29' },
  { text: 'ACME opens a new office.', date: '2020-09-30' },
  { text: 'ACME misses estimates and cuts guidance.', date: '2020-10-01' },
  { text: 'A glossary line without a period.', date: null },
].map((o) => JSON.stringify(o)).join('\n') + '\n');

test('corpus: the cutoff keeps text dated on or before it and every undated item; the hash names what was kept', async () => {
  const src: CorpusSource[] = [{ kind: 'jsonl', path: JSONL }];
  const c = await buildCorpus(src, '2020-09-30');
  assert.deepEqual(c.docs.map((d) => d.date), ['2020-09-29', '2020-09-30', null]);
  assert.equal(c.stats.droppedAfterCutoff, 1);
  assert.equal(c.stats.dated, 2);
  assert.equal(c.stats.undated, 1);
  assert.equal(c.stats.lastDate, '2020-09-30');
  const all = await buildCorpus(src, null);
  assert.equal(all.docs.length, 4);
  assert.notEqual(all.hash, c.hash);
  assert.equal((await buildCorpus(src, '2020-09-30')).hash, c.hash, 'the hash is deterministic');
  const datedOnly = join(TMP, 'dated.jsonl');
  writeFileSync(datedOnly, readFileSync(JSONL, 'utf8').split('\n').filter((l) => l.includes('"date":"2')).join('\n'));
  await assert.rejects(buildCorpus([{ kind: 'jsonl', path: datedOnly }], '2019-01-01'), /corpus is empty after the text cutoff 2019-01-01/);
  await assert.rejects(buildCorpus(src, '2020-13-01'), /--text-cutoff: date "2020-13-01" is not YYYY-MM-DD/);
});

test('corpus: JSONL lines must declare their date; text files split by paragraph; dated text files by @DATE', async () => {
  const bad = join(TMP, 'bad.jsonl');
  writeFileSync(bad, '{"text": "fine", "date": null}\n{"text": "no date here"}\n');
  await assert.rejects(buildCorpus([{ kind: 'jsonl', path: bad }], null), /bad\.jsonl line 2: no "date" field; give "date": "YYYY-MM-DD", or "date": null/);
  writeFileSync(bad, '{"text": "x", "date": "2020/01/01"}\n');
  await assert.rejects(buildCorpus([{ kind: 'jsonl', path: bad }], null), /bad\.jsonl line 1: date "2020\/01\/01" is not YYYY-MM-DD/);
  const txt = join(TMP, 'notes.txt');
  writeFileSync(txt, 'First paragraph\nstill first.\n\n\nSecond one.\n');
  const undated = await buildCorpus([parseTextSource(txt)], '2000-01-01');
  assert.deepEqual(undated.docs.map((d) => [d.text, d.date]), [['First paragraph\nstill first.', null], ['Second one.', null]]);
  const dated = await buildCorpus([parseTextSource(`${txt}@2021-01-04`), { kind: 'jsonl', path: JSONL }], '2020-12-31');
  assert.equal(dated.stats.droppedAfterCutoff, 2, 'a text file dated after the cutoff is dropped');
  assert.throws(() => parseTextSource(`${txt}@2021-02-30`), /is not YYYY-MM-DD/);
});

test('corpus: held-out split by text (a repeated text is on one side only); packing joins documents with the separator', () => {
  const docs = Array.from({ length: 400 }, (_, i) => ({ text: `headline ${i % 150}`, date: null, source: 'x:1' }));
  const { train, heldOut } = splitHeldOut(docs, 0.2);
  assert.equal(train.length + heldOut.length, 400);
  assert.ok(heldOut.length > 20 && heldOut.length < 140, `held out ${heldOut.length}`);
  const trainTexts = new Set(train.map((d) => d.text));
  assert.ok(heldOut.every((d) => !trainTexts.has(d.text)), 'no held-out text is in the training split');
  const tok = new ByteTokenizer();
  const s = packDocuments([{ text: 'ab', date: null, source: 's' }, { text: 'c', date: null, source: 's' }], (x) => tok.encode(x), 0, null);
  assert.deepEqual([...s.ids], [3 + 97, 3 + 98, 0, 3 + 99, 0]);
  assert.equal(s.target, null, 'no context-only text: every token is a target');
});

test('schedule: linear warm-up to the peak, cosine down to lr * min_lr_ratio at the last step', () => {
  const c = { learning_rate: 1e-3, min_lr_ratio: 0.1, warmup_steps: 10, steps: 110 };
  assert.equal(scheduledLr(c, 1), 1e-4);
  assert.equal(scheduledLr(c, 10), 1e-3);
  assert.equal(scheduledLr(c, 11), 1e-3);
  assert.ok(Math.abs(scheduledLr(c, 110) - 1e-4) < 1e-15);
  // halfway through the cosine: the mean of peak and floor
  assert.ok(Math.abs(scheduledLr({ ...c, steps: 111 }, 61) - 5.5e-4) < 1e-12);
  assert.throws(() => scheduledLr(c, 0), /step must be an integer in 1\.\.110/);
  assert.throws(() => parsePretrainConfig({ steps: 5, warmup_steps: 6 }, 't'), /warmup_steps 6 exceeds steps 5/);
  assert.throws(() => parsePretrainConfig({ stepz: 5 }, 't'), /unknown field\(s\) stepz/);
});

const TINY = { model: 'random:tiny', seq_len: 64, batch_size: 4, steps: 60, warmup_steps: 5, learning_rate: 1e-2, eval_every: 30, eval_tokens: 2048, checkpoint_every: 20, heldout_fraction: 0.1 };
const SOURCES: CorpusSource[] = [{ kind: 'synthetic', seed: 1001, days: 300, newsTags: true }, { kind: 'jsonl', path: JSONL }];

test('pretrain: held-out loss falls well below ln(V); the folder reloads with identical logits; metadata records the cutoff', async () => {
  const out = join(TMP, 'model');
  const r = await pretrain({ out, config: parsePretrainConfig(TINY, 'test'), sources: SOURCES, textCutoff: '2020-09-30', command: 'test' });
  const held = r.final.heldout!;
  const syn = held.find((h) => h.group === 'synthetic')!;
  const lnV = Math.log(259);
  assert.ok(syn.nats_per_token < 0.6 * lnV, `held-out ${syn.nats_per_token} nats/token vs ln V = ${lnV}`);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'flag_trader.json', 'train/checkpoint.safetensors', 'train/metrics.jsonl']) {
    assert.ok(existsSync(join(out, f)), `${f} written`);
  }
  const meta = JSON.parse(readFileSync(join(out, 'flag_trader.json'), 'utf8'));
  assert.equal(meta.text_cutoff, '2020-09-30');
  assert.deepEqual(meta.synthetic_seeds, [1001]);
  assert.equal(meta.corpus.hash, r.corpus.hash);
  assert.equal(meta.corpus.droppedAfterCutoff, 1);
  // The HF tokenizer.json gives the byte tokenizer's ids.
  const hf = loadHfTokenizer(join(out, 'tokenizer.json'), join(out, 'tokenizer_config.json'));
  const text = '<|im_start|>user\nSYNTH raises its outlook — é 🙂<|im_end|>\n';
  assert.deepEqual(hf.encode(text), new ByteTokenizer().encode(text));
  assert.equal(hf.decode(hf.encode(text)), text);
  // Reloaded: same logits as the model in memory, bit for bit.
  const loaded = await loadModel(out);
  assert.equal(loaded.tokenizer.kind, 'hf');
  const be = getBackend();
  const ids = new ByteTokenizer().encode('SYNTH shares climb as analysts raise');
  const logits = (m: typeof loaded) => {
    const model = new LlamaModel(m.config, m.weights, be, { trainableLayers: 1 });
    return model.fullLogits(model.forward(ids));
  };
  assert.deepEqual(logits(loaded), logits(r.model));
  // The trained model differs from its random start.
  const start = await loadModel('random:tiny');
  assert.notDeepEqual(logits(start), logits(loaded));
  // An existing run is not overwritten by accident.
  await assert.rejects(pretrain({ out, config: parsePretrainConfig(TINY, 'test'), sources: SOURCES, textCutoff: '2020-09-30' }), /already holds a pretraining run/);
});

test('pretrain --resume continues bit-identically; resuming with another corpus is refused', async () => {
  const cfg = parsePretrainConfig({ ...TINY, steps: 40 }, 'test');
  const a = join(TMP, 'straight'), b = join(TMP, 'resumed');
  await pretrain({ out: a, config: cfg, sources: SOURCES, textCutoff: '2020-09-30' });
  const part = await pretrain({ out: b, config: cfg, sources: SOURCES, textCutoff: '2020-09-30', stopAfter: 25 });
  assert.equal(part.steps, 25);
  assert.ok(!existsSync(join(b, 'model.safetensors')), 'no model folder before the last step');
  await assert.rejects(pretrain({ out: b, config: cfg, sources: SOURCES, textCutoff: '2020-09-29', resume: true }), /the corpus differs from the checkpoint's/);
  await assert.rejects(pretrain({ out: b, config: { ...cfg, learning_rate: 1 }, sources: SOURCES, textCutoff: '2020-09-30', resume: true }), /made with another config/);
  await pretrain({ out: b, config: cfg, sources: SOURCES, textCutoff: '2020-09-30', resume: true });
  assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))), 'same weights, bit for bit');
  assert.equal(readFileSync(join(a, 'train', 'metrics.jsonl'), 'utf8'), readFileSync(join(b, 'train', 'metrics.jsonl'), 'utf8'));
});

test('flag-trader pretrain on the command line: needs a cutoff decision, writes the folder', async () => {
  const ROOT = repoRoot();
  const run = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'pretrain', ...args], { cwd: ROOT, timeout: 120000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
  const out = join(TMP, 'cli');
  const noCutoff = await run('--out', out, '--jsonl', JSONL, '--model', 'random:tiny', '--steps', '2');
  assert.equal(noCutoff.code, 1);
  assert.match(noCutoff.stderr, /pretrain needs --text-cutoff YYYY-MM-DD/);
  const stray = await run('--out', out, '--jsonl', JSONL, '--text-cutoff', '2020-09-30', '--transcript-label', 'trend', '--transcript-hold-band', '0.01');
  assert.equal(stray.code, 1);
  assert.match(stray.stderr, /--transcript-label, --transcript-hold-band without --transcript-seeds/);
  const bad = await run('--out', out, '--jsonl', JSONL, '--text-cutoff', '2020-09-30', '--seq-len', '1');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /seq-len/);
  const ok = await run('--out', out, '--jsonl', JSONL, '--synthetic-seeds', '1001', '--synthetic-days', '60', '--text-cutoff', '2020-09-30',
    '--model', 'random:tiny', '--steps', '4', '--seq-len', '32', '--batch-size', '2', '--warmup-steps', '1', '--eval-every', '2', '--quiet');
  assert.equal(ok.code, 0, ok.stderr);
  const meta = JSON.parse(readFileSync(join(out, 'flag_trader.json'), 'utf8'));
  assert.equal(meta.text_cutoff, '2020-09-30');
  assert.match(meta.command, /--text-cutoff 2020-09-30/);
  assert.equal(meta.config.steps, 4);
});
