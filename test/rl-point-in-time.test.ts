// The point-in-time guard: flag_trader.json's text_cutoff (reader, writer, the loaded model and its
// fingerprint), the check itself, and the refusal / override / record in train, evaluate and reproduce,
// on a few-hundred-parameter model folder written here (no shared files needed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadModel, saveModelFolder } from '../src/model/load.js';
import { MODEL_META_FILE, MODEL_META_FORMAT, readModelMeta, writeModelMeta, type ModelMeta } from '../src/model/meta.js';
import { randomWeights } from '../src/model/random-init.js';
import { parseTrainConfig } from '../src/rl/config.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { checkTextCutoff, describePointInTime } from '../src/rl/point-in-time.js';
import { readRunRecord, runTraining, RUN_FILES } from '../src/rl/run.js';
import { reproduce, pointInTimeLines } from '../src/pipeline/reproduce.js';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { writeReport } from '../src/report/write.js';
import { registerTrain } from '../src/cli/train.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { microConfig, tmpDir, writeMicroTokenizer } from './model-load-fixtures.js';
import { repoRoot } from './shared-paths.js';

const CUTOFF = '2020-09-30';
const TMP = tmpDir('flag-point-in-time-');
after(() => rmSync(TMP, { recursive: true, force: true }));

const META: ModelMeta = {
  format: MODEL_META_FORMAT, version: 1, text_cutoff: CUTOFF,
  corpus: { files: ['news-2020.txt'], sha256: 'abc' }, command: 'flag-trader pretrain ...', losses: [5.5, 4.25],
};

/** A 2-layer model folder (config.json, model.safetensors, tokenizer.json), with flag_trader.json unless told not to. */
function modelFolder(name: string, meta: ModelMeta | null = META): string {
  const dir = join(TMP, name);
  mkdirSync(dir, { recursive: true });
  // Room for a whole compact prompt in the micro tokenizer's (almost) byte-sized tokens.
  const config = microConfig({ max_position_embeddings: 2048 });
  saveModelFolder(dir, config, randomWeights(config, 5));
  writeMicroTokenizer(dir);
  if (meta) writeModelMeta(dir, meta);
  return dir;
}

const MODEL = modelFolder('model');

/**
 * The synthetic market's prices written as a Yahoo CSV (dates from 2020-01-02): a file of real-looking
 * dated data, which the date check applies to (the built-in synthetic market itself is exempt from it).
 */
function marketCsv(days: number): string {
  const path = join(TMP, `market${days}.csv`);
  if (existsSync(path)) return path;
  const m = syntheticMarket({ seed: 1, days });
  const o = m.ohlcv!;
  const rows = m.dates.map((d, i) => [d, o.open[i], o.high[i], o.low[i], o.close[i], o.close[i], o.volume[i]].join(','));
  writeFileSync(path, ['Date,Open,High,Low,Close,Adj Close,Volume', ...rows].join('\n') + '\n');
  return path;
}

/** A tiny LLM run on a dated market file (from 2020-01-02), with `over` on top. */
function llmConfig(over: Record<string, unknown>) {
  const { synthetic_days: days = 60, ...rest } = over as { synthetic_days?: number };
  over = rest;
  return parseTrainConfig({
    policy: 'llm', model: MODEL, data: marketCsv(days), total_timesteps: 40, num_steps: 40, minibatch_size: 8,
    gradient_accumulation_steps: 1, ...over,
  }, 'test');
}

// ---------------------------------------------------------------------------------------------
// flag_trader.json

test('meta: absent -> null; written and read back with the other fields kept as they are', () => {
  const dir = join(TMP, 'meta-rw');
  mkdirSync(dir);
  assert.equal(readModelMeta(dir), null);
  writeModelMeta(dir, META);
  assert.deepEqual(readModelMeta(dir), META);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, MODEL_META_FILE), 'utf8')), META);
  writeModelMeta(dir, { format: MODEL_META_FORMAT, version: 1, text_cutoff: null });
  assert.equal(readModelMeta(dir)!.text_cutoff, null);
});

test('meta: malformed files are refused, naming the file and the field', () => {
  const dir = join(TMP, 'meta-bad');
  mkdirSync(dir);
  const path = join(dir, MODEL_META_FILE);
  const file = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const cases: Array<[string, RegExp]> = [
    [JSON.stringify({ ...META, text_cutoff: '2020-02-30' }), /field "text_cutoff": expected a calendar date YYYY-MM-DD, got "2020-02-30"/],
    [JSON.stringify({ ...META, text_cutoff: '30/09/2020' }), /field "text_cutoff": expected a calendar date YYYY-MM-DD, got "30\/09\/2020"/],
    [JSON.stringify({ ...META, text_cutoff: 20200930 }), /field "text_cutoff": expected a date YYYY-MM-DD, or null when unknown, got 20200930/],
    [JSON.stringify({ format: MODEL_META_FORMAT, version: 1 }), /field "text_cutoff": .*\(missing\)/],
    [JSON.stringify({ ...META, format: 'something-else' }), /field "format": expected "flag-trader\/pretrained-model", got "something-else"/],
    [JSON.stringify({ ...META, version: 2 }), /field "version": expected 1 .*got 2/],
    ['[]', /expected a JSON object with "format", "version" and "text_cutoff"/],
    ['{ "format": ', /the model metadata is not valid JSON/],
  ];
  for (const [text, re] of cases) {
    writeFileSync(path, text);
    assert.throws(() => readModelMeta(dir), (e: Error) => new RegExp(`^${file}: `).test(e.message) && re.test(e.message), text);
  }
  // The writer validates too, and leaves no file behind.
  unlinkSync(path);
  assert.throws(() => writeModelMeta(dir, { ...META, text_cutoff: '2020-9-30' }), /field "text_cutoff"/);
  assert.ok(!existsSync(path));
});

test('loaded model: textCutoff and meta from the folder; the meta file joins the fingerprint only when present', async () => {
  const dir = modelFolder('fp', null);
  const plain = await loadModel(dir);
  assert.equal(plain.textCutoff, null);
  assert.equal(plain.meta, null);
  writeModelMeta(dir, META);
  const withMeta = await loadModel(dir);
  assert.equal(withMeta.textCutoff, CUTOFF);
  assert.deepEqual(withMeta.meta, META);
  assert.notEqual(withMeta.fingerprint, plain.fingerprint);
  unlinkSync(join(dir, MODEL_META_FILE));
  assert.equal((await loadModel(dir)).fingerprint, plain.fingerprint, 'without the file, the old fingerprint');
  const random = await loadModel('random:tiny');
  assert.equal(random.textCutoff, null);
  assert.equal(random.meta, null);
  // A malformed file fails the load, naming it.
  writeFileSync(join(dir, MODEL_META_FILE), JSON.stringify({ ...META, text_cutoff: 'soon' }));
  await assert.rejects(loadModel(dir), new RegExp(`${MODEL_META_FILE}: invalid model metadata: field "text_cutoff"`));
});

// ---------------------------------------------------------------------------------------------
// The check

test('checkTextCutoff: refuses a window starting on or before the cutoff, accepts the day after', () => {
  const check = (testStart: string, allowOverlap = false, cutoff: string | null = CUTOFF) =>
    checkTextCutoff({ cutoff, testStart, model: 'models/x', allowOverlap });
  for (const start of ['2020-09-30', '2020-09-15', '2019-01-02']) {
    assert.throws(() => check(start), (e: Error) => {
      assert.equal(e.message, `model models/x was pretrained on text dated up to 2020-09-30 (text_cutoff in models/x/${MODEL_META_FILE}), `
        + `but the test window starts on ${start}: its text would leak into the evaluation; choose a test window after 2020-09-30 `
        + 'or pass --allow-text-overlap true to run anyway (recorded in the run)');
      return true;
    });
  }
  assert.deepEqual(check('2020-10-01'), { overlap: false });
  assert.deepEqual(check('2020-09-30', true), { overlap: true }, 'the override lets it through, flagged');
  assert.deepEqual(check('2020-10-01', true), { overlap: false }, 'no overlap to flag after the cutoff');
  assert.deepEqual(check('2020-09-15', false, null), { overlap: false }, 'no recorded cutoff: nothing to check');
});

// ---------------------------------------------------------------------------------------------
// train (runTraining) and evaluate

test('train: refused before anything is written; the override and a clean window are recorded in config.json', async () => {
  const synth = syntheticMarket({ seed: 1, days: 60 });
  const defaultTestStart = synth.dates[Math.floor(0.7 * 59) + 1]!; // the day after the 70% training window
  assert.ok(defaultTestStart < CUTOFF);

  const refused = join(TMP, 'refused');
  await assert.rejects(runTraining({ out: refused, config: llmConfig({}) }),
    new RegExp(`pretrained on text dated up to ${CUTOFF} .*the test window starts on ${defaultTestStart}`));
  assert.ok(!existsSync(refused), 'no run directory');
  // The test window the config names counts, also when it starts exactly on the cutoff.
  await assert.rejects(runTraining({ out: refused, config: llmConfig({ synthetic_days: 400, train_end: '2020-09-29', test_start: CUTOFF }) }),
    new RegExp(`up to ${CUTOFF} .*starts on ${CUTOFF}`));
  assert.ok(!existsSync(refused));

  const allowed = join(TMP, 'allowed');
  const logs: string[] = [];
  const r = await runTraining({ out: allowed, config: llmConfig({ allow_text_overlap: true }), stopAfter: 0, log: (m) => logs.push(m) });
  assert.equal(r.updatesDone, 0);
  const rec = readRunRecord(allowed);
  assert.equal(rec.config.allow_text_overlap, true);
  assert.deepEqual(rec.point_in_time, { model: MODEL, text_cutoff: CUTOFF, test_start: defaultTestStart, text_overlap: true });
  assert.ok(logs.some((l) => l.startsWith('warning: Point-in-time') && l.includes(CUTOFF) && l.includes(defaultTestStart)), logs.join('\n'));

  const clean = join(TMP, 'clean');
  await runTraining({ out: clean, config: llmConfig({ synthetic_days: 400, train_end: '2020-09-29', test_start: '2020-10-01', test_end: '2020-10-09' }), stopAfter: 0 });
  assert.deepEqual(readRunRecord(clean).point_in_time, { model: MODEL, text_cutoff: CUTOFF, test_start: '2020-10-01', text_overlap: false });

  // The MLP reads no model: no check, nothing recorded.
  const mlp = join(TMP, 'mlp');
  await runTraining({ out: mlp, config: llmConfig({ policy: 'mlp' }), stopAfter: 0 });
  assert.equal(readRunRecord(mlp).point_in_time, null);
});

test('evaluate: a requested window on or before the recorded cutoff is refused unless allowed', async () => {
  const run = join(TMP, 'clean'); // from the test above: test window 2020-10-01 .. 2020-10-09
  const early = { test_start: '2020-09-15', test_end: '2020-09-25' };
  await assert.rejects(evaluateRun({ run, overrides: early, weights: 'initial', baselines: [] }),
    new RegExp(`up to ${CUTOFF} .*the test window starts on 2020-09-15`));
  const logs: string[] = [];
  const [r] = await evaluateRun({ run, overrides: early, weights: 'initial', baselines: [], allowTextOverlap: true, log: (m) => logs.push(m) });
  assert.equal(r!.start, '2020-09-15');
  assert.ok(logs.some((l) => l.startsWith('warning: Point-in-time') && l.includes('2020-09-15')), logs.join('\n'));
  const [own] = await evaluateRun({ run, weights: 'initial', baselines: [] });
  assert.equal(own!.start, '2020-10-01', 'the run\'s own window starts after the cutoff');

  // The command: refused without the flag; a bare --allow-text-overlap gets past the check (and then
  // stops at the missing trained weights of this stopped-at-0 run).
  const program = () => new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  const cmd = async (...args: string[]) => {
    const p = program();
    registerTrain(p);
    try { await p.parseAsync(['node', 'flag-trader', 'evaluate', '--run', run, '--test-start', '2020-09-15', '--test-end', '2020-09-25', ...args]); return ''; } catch (e) { return (e as Error).message; }
  };
  assert.match(await cmd(), /pretrained on text dated up to 2020-09-30/);
  assert.match(await cmd('--allow-text-overlap', 'false'), /pretrained on text dated up to 2020-09-30/);
  assert.match(await cmd('--allow-text-overlap'), /holds no trained weights yet/);
  assert.match(await cmd('--allow-text-overlap', 'true'), /holds no trained weights yet/);
  assert.match(await cmd('--allow-text-overlap', 'maybe'), /expected true or false, got "maybe"/);
});

// ---------------------------------------------------------------------------------------------
// The CLI

const MAIN = ['--import', 'tsx', join(repoRoot(), 'src', 'cli', 'main.ts')];
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...MAIN, ...args], { cwd: repoRoot(), timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const TINY_FLAGS = ['--policy', 'llm', '--model', MODEL, '--data', marketCsv(60), '--total-timesteps', '40', '--num-steps', '40',
  '--minibatch-size', '8', '--gradient-accumulation-steps', '1'];

test('flag-trader train refuses with the cutoff in the message and trains nothing; --allow-text-overlap true runs', async () => {
  const out = join(TMP, 'cli-refused');
  const r = await cli('train', ...TINY_FLAGS, '--out', out);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`model ${MODEL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was pretrained on text dated up to ${CUTOFF}`));
  assert.match(r.stderr, /--allow-text-overlap true/);
  assert.equal(r.stdout, '', 'no config printed: training never started');
  assert.ok(!existsSync(out), 'no run directory, no metrics');

  const ok = join(TMP, 'cli-allowed');
  const a = await cli('train', ...TINY_FLAGS, '--allow-text-overlap', 'true', '--stop-after', '0', '--out', ok);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /warning: Point-in-time: model .* was pretrained on text dated up to 2020-09-30/);
  const rec = JSON.parse(readFileSync(join(ok, RUN_FILES.config), 'utf8'));
  assert.equal(rec.point_in_time.text_overlap, true);
  assert.equal(rec.point_in_time.text_cutoff, CUTOFF);
});

// ---------------------------------------------------------------------------------------------
// reproduce and the report

test('reproduce: refused before any run trains; the report notes the cutoff or warns of an allowed overlap', async () => {
  const out = join(TMP, 'repro');
  await assert.rejects(reproduce({
    out, title: 't', seeds: [1], mlpAblation: true, untrained: false, baselines: [],
    targets: [{ asset: 'SYNTH', data: marketCsv(60), format: 'auto', annualization: { ...ANNUALIZATIONS.stock }, train: null, test: null }],
    base: { model: MODEL, total_timesteps: 40, num_steps: 40, minibatch_size: 8, gradient_accumulation_steps: 1 },
  }), (e: Error) => new RegExp(`^reproduce SYNTH: model .* was pretrained on text dated up to ${CUTOFF}`).test(e.message));
  assert.ok(!existsSync(join(out, 'runs')), 'nothing trained');

  const checks = new Map([
    ['MSFT', { model: 'm', text_cutoff: CUTOFF, test_start: '2020-10-01', text_overlap: false }],
    ['TSLA', { model: 'm', text_cutoff: CUTOFF, test_start: '2020-10-01', text_overlap: false }],
    ['BTC', { model: 'm', text_cutoff: CUTOFF, test_start: '2020-09-15', text_overlap: true }],
    ['RND', { model: 'random:tiny', text_cutoff: null, test_start: '2020-01-02', text_overlap: false }],
  ]);
  const lines = pointInTimeLines(['MSFT', 'TSLA', 'BTC', 'RND'], checks);
  assert.deepEqual(lines.notes, ['Point-in-time: model m text cutoff 2020-09-30; every test window starts after it (MSFT 2020-10-01, TSLA 2020-10-01).']);
  assert.deepEqual(lines.warnings, [`BTC: ${describePointInTime(checks.get('BTC')!)}`]);
  assert.match(lines.warnings[0]!, /model m was pretrained on text dated up to 2020-09-30, but the test window starts on 2020-09-15 \(allowed by allow_text_overlap\)/);
  assert.deepEqual(pointInTimeLines(['MSFT'], checks).warnings, [], 'only the assets done so far');

  const input = { title: 'r', notes: lines.notes, warnings: lines.warnings, assets: [], training: [] };
  const md = renderMarkdown(input, []);
  assert.match(md, /^> \*\*Warning:\*\* BTC: Point-in-time: model m was pretrained/m);
  assert.match(md, /^- Point-in-time: model m text cutoff 2020-09-30/m);
  const dir = join(TMP, 'report');
  writeReport(dir, input);
  assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /<p class="warning">Warning: BTC: Point-in-time: model m was pretrained/);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).warnings, lines.warnings);
  writeReport(dir, { ...input, warnings: [] });
  assert.ok(!('warnings' in JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))), 'no warnings key without warnings');
});

test('a model that read a synthetic market seed\'s headlines is refused on that seed (the shipped model read 1001-1003)', async () => {
  const { runPointInTime } = await import('../src/rl/point-in-time.js');
  const { parseTrainConfig: parse } = await import('../src/rl/config.js');
  const { syntheticMarket } = await import('../src/data/synthetic.js');
  const series = syntheticMarket({ seed: 1, days: 60 });
  const base = { model: 'flag-news-small', synthetic_days: 60 };
  await assert.rejects(runPointInTime(parse({ ...base, synthetic_seed: 1002 }, 't'), series),
    /pretrained on the headlines of synthetic market seed 1002 \(synthetic_seeds \[1001,1002,1003\] in its flag_trader\.json\)/);
  const allowed = await runPointInTime(parse({ ...base, synthetic_seed: 1002, allow_text_overlap: true }, 't'), series);
  assert.equal(allowed!.text_overlap, true);
  const clean = await runPointInTime(parse({ ...base, synthetic_seed: 1 }, 't'), series);
  assert.equal(clean!.text_overlap, false);
  assert.equal(clean!.text_cutoff, '2020-09-30');
  // The built-in market's made-up calendar is not compared with the cutoff of real text.
  assert.ok(clean!.test_start! <= '2020-09-30', `test window starts ${clean!.test_start}, before the cutoff, and is accepted`);
});
