// Hostile inputs on run directories (issue 12): two trainings of one run (the run lock), files changed
// after the run wrote them (manifest.json checksums), and NaN / Inf in policy files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import { checkRunFile, readRunRecord, runTraining, RUN_FILES } from '../src/rl/run.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { loadCheckpoint, readPolicyTensors } from '../src/rl/checkpoint.js';
import { LOCK_FILE } from '../src/rl/run-lock.js';
import { MANIFEST_FILE, digestFile, readManifest, verifyRunFile, type Manifest } from '../src/rl/manifest.js';
import { readSafetensors, writeSafetensors, type Tensor } from '../src/model/safetensors.js';
import { runScorer } from '../src/serve/policy-scorer.js';
import { metricsOf, smallRunConfig, withTmp as withTmpDir } from './run-helpers.js';

const cfg = smallRunConfig;
const withTmp = (fn: (dir: string) => Promise<void>) => withTmpDir('rl-integrity-', fn);

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Flip one high mantissa bit of a float in the data region, 3/4 into the file (the value stays finite). */
function flipByte(path: string): void {
  const b = readFileSync(path);
  const at = (Math.floor(b.length * 0.75) & ~3) + 2;
  b[at]! ^= 0x40;
  writeFileSync(path, b);
}

function writeLock(dir: string, lock: Record<string, unknown>): void {
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ token: 'test', command: 'test', ...lock }));
}

/** A pid that no process on this host has now: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

// ---------------------------------------------------------------------------------------------
// 1. The run lock

test('lock: a second training of a run while the first still trains it is refused, naming the holder; the first is unharmed', withTmp(async (dir) => {
  const out = join(dir, 'run');
  let second: Promise<Error | null> | null = null;
  let held: { pid: number; host: string; started: string } | null = null;
  const first = await runTraining({
    out, config: cfg(), onUpdate: (m) => {
      if (m.update !== 3) return;
      held = JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8'));
      // `train --resume` of the same run from another "process", while this one is mid-run.
      second = runTraining({ out, resume: true }).then(() => null, (e: Error) => e);
    },
  });
  assert.equal(first.updatesDone, 6);
  const err = await second!;
  assert.ok(err instanceof Error, 'the second training must be refused');
  assert.equal(held!.pid, process.pid);
  assert.equal(held!.host, hostname());
  assert.match(err.message, new RegExp(`^${esc(out)} is being trained by another process: pid ${process.pid} on host ${esc(hostname())}, started ${esc(held!.started)}`));
  // Exactly one line per update, in order: no interleaved writer.
  assert.deepEqual(metricsOf(out).map((m) => m.update), [1, 2, 3, 4, 5, 6]);
  assert.equal(loadCheckpoint(join(out, RUN_FILES.checkpoint)).state.trainer.update, 6);
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'released at the end of the run');
}));

test('lock: a live holder (this process) refuses resume and new runs; a dead holder is taken over with a note; other hosts are refused', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg(), stopAfter: 3 });
  const before = readFileSync(join(out, RUN_FILES.metrics), 'utf8');
  const started = '2024-05-06T07:08:09.000Z';

  writeLock(out, { pid: process.pid, host: hostname(), started });
  await assert.rejects(runTraining({ out, resume: true }),
    new RegExp(`is being trained by another process: pid ${process.pid} on host ${esc(hostname())}, started ${esc(started)}`));
  assert.equal(readFileSync(join(out, RUN_FILES.metrics), 'utf8'), before, 'nothing written');
  assert.ok(existsSync(join(out, LOCK_FILE)), "another holder's lock is left alone");

  writeLock(out, { pid: 4242, host: 'elsewhere.example', started });
  await assert.rejects(runTraining({ out, resume: true }), /locked by another process: pid 4242 on host elsewhere\.example, started 2024-05-06T07:08:09\.000Z.*another host/);

  writeFileSync(join(out, LOCK_FILE), 'garbage');
  await assert.rejects(runTraining({ out, resume: true }), new RegExp(`${esc(join(out, LOCK_FILE))} exists but is not a valid lock`));

  const dead = deadPid();
  writeLock(out, { pid: dead, host: hostname(), started });
  const notes: string[] = [];
  const r = await runTraining({ out, resume: true, log: (m) => notes.push(m) });
  assert.equal(r.updatesDone, 6);
  assert.ok(notes.some((n) => n.startsWith(`note: taking over the stale lock ${join(out, LOCK_FILE)}: pid ${dead} on host ${hostname()}, started ${started}`)), notes.join('\n'));
  assert.ok(!existsSync(join(out, LOCK_FILE)));

  // A new run in a directory another live process is setting up.
  const fresh = join(dir, 'fresh');
  mkdirSync(fresh);
  writeLock(fresh, { pid: process.pid, host: hostname(), started });
  await assert.rejects(runTraining({ out: fresh, config: cfg() }), /is being trained by another process/);
  assert.ok(!existsSync(join(fresh, RUN_FILES.config)), 'no config.json written without the lock');
}));

// ---------------------------------------------------------------------------------------------
// 2. manifest.json

test('manifest: a finished run lists the sha256 of config, checkpoint, policy and metrics; evaluate and serve refuse a flipped byte', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg() });
  const m = readManifest(out)!;
  assert.deepEqual(Object.keys(m.files).sort(), [RUN_FILES.checkpoint, RUN_FILES.config, RUN_FILES.metrics, RUN_FILES.policy].sort());
  for (const [name, e] of Object.entries(m.files)) assert.deepEqual(e, digestFile(join(out, name)), name);
  assert.equal(readRunRecord(out).manifest, MANIFEST_FILE);
  const logs: string[] = [];
  const [good] = await evaluateRun({ run: out, baselines: [], log: (l) => logs.push(l) });
  assert.deepEqual(logs, []);

  const policy = join(out, RUN_FILES.policy);
  const original = readFileSync(policy);
  flipByte(policy);
  const mismatch = new RegExp(`^Error: ${esc(policy)}: the sha256 checksum does not match the manifest: .*${esc(join(out, MANIFEST_FILE))} records ${m.files[RUN_FILES.policy]!.sha256}`);
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), mismatch);
  await assert.rejects(runScorer(out), mismatch);
  writeFileSync(policy, original);
  const [again] = await evaluateRun({ run: out, baselines: [] });
  assert.deepEqual(again!.metrics, good!.metrics);

  // config.json edited; metrics.jsonl truncated; a listed file deleted; the manifest deleted.
  const configPath = join(out, RUN_FILES.config);
  const config = readFileSync(configPath, 'utf8');
  writeFileSync(configPath, config.replace('"seed": 1', '"seed": 2'));
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), new RegExp(`^Error: ${esc(configPath)}: the sha256 checksum does not match the manifest`));
  writeFileSync(configPath, config);
  const metricsPath = join(out, RUN_FILES.metrics);
  writeFileSync(metricsPath, readFileSync(metricsPath, 'utf8').split('\n').slice(1).join('\n'));
  assert.throws(() => checkRunFile(out, RUN_FILES.metrics), new RegExp(`^Error: ${esc(metricsPath)}: the sha256 checksum does not match`));
  unlinkSync(policy);
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), new RegExp(`^Error: ${esc(policy)} is missing, but .*manifest\\.json lists it`));
  writeFileSync(policy, original);
  unlinkSync(join(out, MANIFEST_FILE));
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), /manifest\.json is missing, but .*config\.json says the run records its files' checksums there/);
}));

test('manifest: train --resume refuses a corrupted checkpoint, naming it (and releases the lock)', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg(), stopAfter: 3 });
  const ckpt = join(out, RUN_FILES.checkpoint);
  flipByte(ckpt);
  await assert.rejects(runTraining({ out, resume: true }), new RegExp(`^Error: ${esc(ckpt)}: the sha256 checksum does not match the manifest`));
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'lock released on error');
  // Evaluating the unfinished run reads the checkpoint: refused too.
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), new RegExp(`^Error: ${esc(ckpt)}: the sha256 checksum`));
}));

test('manifest: a write interrupted between the manifest and the file is accepted in either state', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg(), stopAfter: 3 });
  const m = readManifest(out)!;
  const ckpt = m.files[RUN_FILES.checkpoint]!;
  const other = { sha256: 'ab'.repeat(32), bytes: 123 };
  const save = (x: Manifest) => writeFileSync(join(out, MANIFEST_FILE), JSON.stringify(x));
  // Killed after the manifest recorded the next checkpoint, before the file was replaced: the old one is fine.
  save({ ...m, files: { ...m.files, [RUN_FILES.checkpoint]: { ...other, previous: { sha256: ckpt.sha256, bytes: ckpt.bytes } } } });
  assert.equal(verifyRunFile(out, RUN_FILES.checkpoint, readManifest(out)!), 'verified');
  // ... after the file was replaced, before the manifest dropped `previous`.
  save({ ...m, files: { ...m.files, [RUN_FILES.checkpoint]: { ...ckpt, previous: other } } });
  assert.equal(verifyRunFile(out, RUN_FILES.checkpoint, readManifest(out)!), 'verified');
  // Killed before the first policy file was written: absent, as the manifest allows.
  save({ ...m, files: { ...m.files, [RUN_FILES.policy]: { ...other, previous: null } } });
  assert.equal(verifyRunFile(out, RUN_FILES.policy, readManifest(out)!), 'absent');
  // The resume goes on from the intact checkpoint and ends with a clean manifest.
  const r = await runTraining({ out, resume: true });
  assert.equal(r.startUpdate, 2);
  const end = readManifest(out)!;
  for (const e of Object.values(end.files)) assert.equal(e.previous, undefined);
  assert.deepEqual(end.files[RUN_FILES.policy], digestFile(join(out, RUN_FILES.policy)));
  // A malformed manifest is an error naming it.
  writeFileSync(join(out, MANIFEST_FILE), '{"format": "something else"}');
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), new RegExp(`${esc(join(out, MANIFEST_FILE))}: expected a run manifest`));
}));

test('manifest: runs from before manifests load with a warning; resuming one starts its manifest', withTmp(async (dir) => {
  const legacy = (run: string) => {
    unlinkSync(join(run, MANIFEST_FILE));
    const rec = JSON.parse(readFileSync(join(run, RUN_FILES.config), 'utf8'));
    delete rec.manifest;
    writeFileSync(join(run, RUN_FILES.config), JSON.stringify(rec, null, 2) + '\n');
  };
  const done = join(dir, 'done');
  await runTraining({ out: done, config: cfg() });
  legacy(done);
  const logs: string[] = [];
  const [r] = await evaluateRun({ run: done, baselines: [], log: (l) => logs.push(l) });
  assert.ok(r);
  assert.deepEqual(logs, [`warning: ${done} has no manifest.json (a run from before file checksums were recorded): its files are loaded unverified`]);
  assert.ok(!existsSync(join(done, MANIFEST_FILE)), 'evaluate writes nothing');

  const cut = join(dir, 'cut');
  await runTraining({ out: cut, config: cfg(), stopAfter: 3 });
  legacy(cut);
  const notes: string[] = [];
  await runTraining({ out: cut, resume: true, log: (l) => notes.push(l) });
  assert.ok(notes.some((n) => n.includes(`recording the checksums of its files in manifest.json`)), notes.join('\n'));
  const m = readManifest(cut)!;
  for (const name of [RUN_FILES.config, RUN_FILES.checkpoint, RUN_FILES.policy, RUN_FILES.metrics]) assert.deepEqual(m.files[name], digestFile(join(cut, name)), name);
  assert.equal(readRunRecord(cut).manifest, undefined, "config.json keeps the run's original record");
}));

// ---------------------------------------------------------------------------------------------
// 3. Non-finite weights in policy files

test('policy files and checkpoints holding NaN or Inf are refused, naming the file and the tensor', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg() });
  const poison = (path: string, name: string, value: number) => {
    const { tensors, metadata } = readSafetensors(path);
    const t = tensors.get(name)!;
    t.data[3] = value;
    writeSafetensors(path, [...tensors].map(([n, x]): [string, Tensor] => [n, { shape: x.shape, data: x.data }]), { metadata });
  };
  const policy = join(out, RUN_FILES.policy), ckpt = join(out, RUN_FILES.checkpoint);
  poison(policy, 'trunk.0.weight', NaN);
  assert.throws(() => readPolicyTensors(policy), new RegExp(`^Error: ${esc(policy)}: tensor "trunk\\.0\\.weight" \\[16, \\d+\\] holds 1 non-finite value \\(first: NaN at \\[0, 3\\]\\)`));
  poison(ckpt, 'optimizer.v.trunk.0.weight', Infinity);
  assert.throws(() => loadCheckpoint(ckpt), new RegExp(`^Error: ${esc(ckpt)}: tensor "optimizer\\.v\\.trunk\\.0\\.weight" .*first: Infinity`));
  // Even when the manifest agrees with the file (weights that diverged before they were written).
  const m = readManifest(out)!;
  m.files[RUN_FILES.policy] = digestFile(policy);
  writeFileSync(join(out, MANIFEST_FILE), JSON.stringify(m));
  await assert.rejects(evaluateRun({ run: out, baselines: [] }), new RegExp(`^Error: ${esc(policy)}: tensor "trunk\\.0\\.weight"`));
  await assert.rejects(runScorer(out), new RegExp(`^Error: ${esc(policy)}: tensor "trunk\\.0\\.weight"`));
}));
