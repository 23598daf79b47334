/**
 * Model benchmark: the decoder on the SmolLM2-135M shape (random weights), at prompt lengths like
 * the trader's. Measures
 *  - sgemm GFLOP/s of the backend (the ceiling),
 *  - the full forward over T tokens (all layers, logits of the 3 action rows at the last position),
 *  - the trainable top-K forward + backward from a cached frozen boundary (one PPO sample),
 *  - a rollout step: frozen layers with the instruction prefix cached + top-K forward,
 * as medians of repeated runs, with achieved GFLOP/s as a fraction of the best-case sgemm at the
 * model's own MLP shape (measureSgemmGflops' 512^3 figure is reported too), where the time goes
 * (per kernel, from one instrumented run) and the peak RSS.
 *
 * Run: node --import tsx bench/model.ts [--json] [--threads N] [--model SPEC] [--lengths 300,512] ...
 * (also `flag-trader bench`; both take the options of modelBenchCommand).
 */
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import type { Backend } from '../src/kernels/backend.js';
import { backendInfo, getBackend, measureSgemmGflops, type BackendChoice } from '../src/kernels/index.js';
import type { LlamaConfig } from '../src/model/config.js';
import { DEFAULT_TRAINABLE_LAYERS, LlamaModel, type TrainableActivations } from '../src/model/llama.js';
import { TokenSegments } from '../src/model/segments.js';
import { loadModel } from '../src/model/load.js';
import { Rng } from '../src/util/rng.js';
import { backendChoice, intList, positiveInt, STDIO, type CommandIo } from '../src/util/options.js';

/** The settings a run of the model benchmark takes when not given (options and flags alike). */
export const MODEL_BENCH_DEFAULTS = {
  model: 'random:smollm2-135m',
  lengths: [300, 512],
  threads: 2,
  /** Timed runs per measurement, after one warm-up. */
  repeats: 7,
  trainableLayers: DEFAULT_TRAINABLE_LAYERS,
  /** Fraction of the prompt that is the cached instruction prefix in the rollout-step measurement. */
  prefixFraction: 0.6,
  backend: 'auto' as BackendChoice,
} as const;

/** Each field defaults to MODEL_BENCH_DEFAULTS. */
export interface ModelBenchOptions {
  model?: string;
  lengths?: number[];
  threads?: number;
  repeats?: number;
  trainableLayers?: number;
  prefixFraction?: number;
  backend?: BackendChoice;
  log?: (line: string) => void;
}

export interface Timing {
  medianS: number;
  minS: number;
  gflop: number;
  gflops: number;
  fractionOfSgemm: number;
}

export interface LengthResult {
  T: number;
  /** Best-case sgemm GFLOP/s at this length's dominant shape (the MLP's [T, C] x [C, F]): fractions use it. */
  sgemmShapeGflops: number;
  fullForward: Timing;
  trainableFwdBwd: Timing;
  rolloutStep: Timing & { prefixTokens: number };
  /** Seconds per kernel in one instrumented full forward and one fwd+bwd (sorted, largest first). */
  breakdown: { fullForward: Array<[string, number]>; trainableFwdBwd: Array<[string, number]> };
}

export interface ModelBenchResult {
  model: string;
  backend: string;
  /** The kernels: the BLAS build and OpenBLAS core (backendInfo), which set the sgemm rate. */
  blas: string;
  threads: number;
  trainableLayers: number;
  sgemmGflops: number;
  lengths: LengthResult[];
  peakRssMB: number;
}

// ---------------------------------------------------------------------------------------------
// FLOP counts (multiply-add = 2) of what the model computes.

interface Shape { C: number; F: number; HD: number; KVD: number; H: number; D: number }
function shapeOf(c: LlamaConfig): Shape {
  return { C: c.hidden_size, F: c.intermediate_size, HD: c.num_attention_heads * c.head_dim, KVD: c.num_key_value_heads * c.head_dim, H: c.num_attention_heads, D: c.head_dim };
}

/**
 * One layer forward over T new rows after `past` cached ones, the last n rows getting queries,
 * attention output and MLP (causal attention counted exactly: query t sees past + t + 1 keys).
 */
function layerForwardFlops(s: Shape, T: number, n: number, past = 0): number {
  const kv = 2 * T * s.C * 2 * s.KVD;
  const qo = 2 * n * s.C * s.HD * 2;
  const mlp = 2 * n * s.C * s.F * 3;
  let keys = 0;
  for (let t = T - n; t < T; t++) keys += past + t + 1;
  const att = 2 * 2 * s.H * s.D * keys; // scores and weighted sum
  return kv + qo + mlp + att;
}

/** Full forward, top layer for the last row only, plus the 3 action logits. */
export function fullForwardFlops(c: LlamaConfig, T: number): number {
  const s = shapeOf(c);
  let f = 0;
  for (let l = 0; l < c.num_hidden_layers; l++) f += layerForwardFlops(s, T, l === c.num_hidden_layers - 1 ? 1 : T);
  return f + 2 * 3 * s.C;
}

/** The frozen layers over tokens P .. T-1 with the first P cached. */
export function frozenSuffixFlops(c: LlamaConfig, frozenLayers: number, T: number, P: number): number {
  return frozenLayers * layerForwardFlops(shapeOf(c), T - P, T - P, P);
}

/** Top-K forward + backward (backward: weight and input gradients = 2x the matmuls, 2x attention). */
export function trainableFlops(c: LlamaConfig, T: number, K: number): number {
  const s = shapeOf(c);
  let f = 0;
  for (let j = 0; j < K; j++) f += 3 * layerForwardFlops(s, T, j === K - 1 ? 1 : T);
  return f;
}

// ---------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeIt(fn: () => void, repeats: number): number[] {
  fn(); // warm-up: buffers allocated, tables built
  const out: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

/** GFLOP/s of the fastest of 15 runs of the MLP-up product [T, C] x [F, C]^T (the model's commonest shape). */
function shapeSgemmGflops(be: Backend, cfg: LlamaConfig, T: number): number {
  const C = cfg.hidden_size, F = cfg.intermediate_size;
  const A = new Float32Array(T * C).fill(0.01), B = new Float32Array(F * C).fill(0.02), out = new Float32Array(T * F);
  let best = Infinity;
  for (let r = 0; r < 16; r++) {
    const t0 = process.hrtime.bigint();
    be.sgemm(false, true, T, F, C, 1, A, C, B, C, 0, out, F);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r > 0) best = Math.min(best, dt);
  }
  return (2 * T * C * F) / best / 1e9;
}

function timing(times: number[], gflop: number, sgemm: number): Timing {
  const m = median(times);
  return { medianS: m, minS: Math.min(...times), gflop, gflops: gflop / m, fractionOfSgemm: gflop / m / sgemm };
}

/** A backend that adds up the wall time of each kernel (sgemm split by shape class). */
function instrument(be: Backend): { backend: Backend; take(): Array<[string, number]> } {
  const acc = new Map<string, number>();
  const backend = new Proxy(be, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      const name = String(prop);
      return (...args: unknown[]) => {
        const t0 = process.hrtime.bigint();
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        const key = name === 'sgemm' ? `sgemm ${args[0] ? 'T' : 'N'}${args[1] ? 'T' : 'N'} ${String(args[2])}x${String(args[3])}x${String(args[4])}` : name;
        acc.set(key, (acc.get(key) ?? 0) + dt);
        return r;
      };
    },
  });
  return { backend, take: () => { const out = [...acc].sort((a, b) => b[1] - a[1]); acc.clear(); return out; } };
}

/** Per-kernel times of the run with the least kernel time out of three (the least disturbed). */
function quietestBreakdown(fn: () => void, inst: { take(): Array<[string, number]> }): Array<[string, number]> {
  fn(); inst.take();
  let best: Array<[string, number]> = [];
  let bestTotal = Infinity;
  for (let r = 0; r < 3; r++) {
    fn();
    const b = inst.take();
    const total = b.reduce((s, [, v]) => s + v, 0);
    if (total < bestTotal) { bestTotal = total; best = b; }
  }
  return best;
}

export async function runModelBench(o: ModelBenchOptions = {}): Promise<ModelBenchResult> {
  const log = o.log ?? (() => {});
  const d = MODEL_BENCH_DEFAULTS;
  const spec = o.model ?? d.model;
  const lengths = o.lengths ?? d.lengths;
  const repeats = o.repeats ?? d.repeats;
  const K = o.trainableLayers ?? d.trainableLayers;
  const prefixFraction = o.prefixFraction ?? d.prefixFraction;
  const be = getBackend(o.backend ?? d.backend);
  be.setThreads(o.threads ?? d.threads);
  log(`backend ${be.name}, ${be.getThreads()} threads; loading ${spec}`);
  const loaded = await loadModel(spec);
  const cfg = loaded.config;
  // The ceiling: the best of three medians (another process on these 2 cores only ever slows a run down).
  const sgemm = Math.max(...[0, 1, 2].map(() => measureSgemmGflops(be, 512)));
  log(`sgemm 512^3: ${sgemm.toFixed(1)} GFLOP/s`);
  const model = new LlamaModel(cfg, loaded.weights, be, { trainableLayers: K });
  const inst = instrument(be);
  const probe = new LlamaModel(cfg, loaded.weights, inst.backend, { trainableLayers: K });
  const actionIds = [0, 1, 2].map((i) => Math.min(cfg.vocab_size - 1, 100 + i));
  const rng = new Rng(1);
  const results: LengthResult[] = [];

  for (const T of lengths) {
    const ids = Array.from({ length: T }, () => rng.int(cfg.vocab_size));
    const ceiling = shapeSgemmGflops(be, cfg, T);
    log(`T=${T} sgemm at the MLP shape ${T}x${cfg.intermediate_size}x${cfg.hidden_size}: ${ceiling.toFixed(1)} GFLOP/s (best of 15)`);
    const full = (m: LlamaModel) => (): void => { m.selectedLogits(m.forward(ids), actionIds); };
    const fullTimes = timeIt(full(model), repeats);
    const fullT = timing(fullTimes, fullForwardFlops(cfg, T) / 1e9, ceiling);
    log(`T=${T} full forward: median ${fullT.medianS.toFixed(3)} s (${fullT.gflops.toFixed(1)} GFLOP/s)`);

    // The frozen layers' output (the boundary), through the model's prefix cache.
    const frozen = (tokens: number[] | TokenSegments): Float32Array => model.forward(tokens, { to: model.frozenLayers, cache: model.prefixCache, outRows: 'all' });
    const boundary = frozen(ids);
    const dH = new Float32Array(cfg.hidden_size).fill(1e-3);
    let acts: TrainableActivations | undefined;
    const fb = (m: LlamaModel) => (): void => {
      acts = m.trainForward(ids, boundary, acts ? { reuse: acts } : {});
      m.backward(acts, dH);
    };
    const fbT = timing(timeIt(fb(model), repeats), trainableFlops(cfg, T, K) / 1e9, ceiling);
    log(`T=${T} top-${K} fwd+bwd: median ${fbT.medianS.toFixed(3)} s (${fbT.gflops.toFixed(1)} GFLOP/s)`);

    // Rollout step: the instruction prefix is cached; the rest of the prompt runs the frozen layers.
    const P = Math.max(1, Math.floor(T * prefixFraction));
    frozen(TokenSegments.of(ids, [P]));
    let tail = 0;
    const step = (): void => {
      const q = ids.slice();
      q[T - 1 - (tail++ % (T - P))] = rng.int(cfg.vocab_size); // a new day: the suffix changes
      const b = frozen(q);
      acts = model.trainForward(q, b, acts ? { reuse: acts } : {});
    };
    const stepFlops = frozenSuffixFlops(cfg, model.frozenLayers, T, P) + trainableFlops(cfg, T, K) / 3;
    const stepT = { ...timing(timeIt(step, repeats), stepFlops / 1e9, ceiling), prefixTokens: P };
    log(`T=${T} rollout step (${P} prefix tokens cached): median ${stepT.medianS.toFixed(3)} s`);

    const bFull = quietestBreakdown(full(probe), inst);
    const bFb = quietestBreakdown(fb(probe), inst);
    results.push({ T, sgemmShapeGflops: ceiling, fullForward: fullT, trainableFwdBwd: fbT, rolloutStep: stepT, breakdown: { fullForward: bFull, trainableFwdBwd: bFb } });
  }
  return {
    model: spec, backend: be.name, blas: backendInfo(be), threads: be.getThreads(), trainableLayers: K, sgemmGflops: sgemm,
    lengths: results, peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

/** Kernel time grouped: sgemm (all shapes), then each fused kernel. */
function grouped(b: Array<[string, number]>): Array<[string, number]> {
  const g = new Map<string, number>();
  for (const [k, v] of b) {
    const key = k.startsWith('sgemm') ? 'sgemm' : k;
    g.set(key, (g.get(key) ?? 0) + v);
  }
  return [...g].sort((a, b2) => b2[1] - a[1]);
}

export function formatModelBench(r: ModelBenchResult): string {
  const lines: string[] = [];
  lines.push(`model ${r.model}, backend ${r.backend}, ${r.threads} threads, top-${r.trainableLayers} trainable`);
  lines.push(`kernels: ${r.blas}`);
  lines.push(`sgemm (512^3, measureSgemmGflops): ${r.sgemmGflops.toFixed(1)} GFLOP/s`);
  for (const l of r.lengths) lines.push(`sgemm at the model's MLP shape, T=${l.T} (best run): ${l.sgemmShapeGflops.toFixed(1)} GFLOP/s  <- "of sgemm" below`);
  lines.push('');
  lines.push('   T  measurement                      median s   min s   GFLOP   GFLOP/s  of sgemm');
  for (const l of r.lengths) {
    const row = (name: string, t: Timing): string =>
      `${String(l.T).padStart(4)}  ${name.padEnd(31)} ${t.medianS.toFixed(3).padStart(8)} ${t.minS.toFixed(3).padStart(7)} ${t.gflop.toFixed(1).padStart(7)} ${t.gflops.toFixed(1).padStart(9)} ${(100 * t.fractionOfSgemm).toFixed(0).padStart(8)}%`;
    lines.push(row('full forward (3 action logits)', l.fullForward));
    lines.push(row(`top-${r.trainableLayers} fwd+bwd from boundary`, l.trainableFwdBwd));
    lines.push(row(`rollout step (${l.rolloutStep.prefixTokens} cached)`, l.rolloutStep));
  }
  for (const l of r.lengths) {
    for (const [name, b] of [['full forward', l.breakdown.fullForward], [`top-${r.trainableLayers} fwd+bwd`, l.breakdown.trainableFwdBwd]] as const) {
      const total = b.reduce((s, [, v]) => s + v, 0);
      lines.push('');
      lines.push(`where the time goes, T=${l.T} ${name} (kernel time ${total.toFixed(3)} s):`);
      for (const [k, v] of grouped(b)) lines.push(`  ${k.padEnd(20)} ${v.toFixed(3).padStart(7)} s  ${(100 * v / total).toFixed(0).padStart(3)}%`);
    }
  }
  lines.push('');
  lines.push(`peak RSS: ${r.peakRssMB.toFixed(0)} MB`);
  return lines.join('\n') + '\n';
}

/** The benchmark's options and action on `cmd`: `flag-trader bench` (src/cli/model.ts) and this script. */
export function modelBenchCommand(cmd: Command, io: CommandIo = STDIO): Command {
  const d = MODEL_BENCH_DEFAULTS;
  return cmd
    .description('model benchmark: forward and top-K forward+backward speed on the SmolLM2-135M shape')
    .option('--model <spec>', 'model spec', d.model)
    .option('--threads <n>', 'threads', positiveInt('--threads'), d.threads)
    .option('--lengths <list>', 'prompt lengths', intList('--lengths', 1), [...d.lengths])
    .option('--repeats <n>', 'timed runs per measurement', positiveInt('--repeats'), d.repeats)
    .option('--trainable-layers <k>', 'trainable top layers', positiveInt('--trainable-layers'), d.trainableLayers)
    .option('--backend <name>', 'native, typescript or auto', backendChoice, d.backend)
    .option('--json', 'print JSON')
    .action(async (o: { model: string; threads: number; lengths: number[]; repeats: number; trainableLayers: number; backend: BackendChoice; json?: boolean }) => {
      const r = await runModelBench({ ...o, log: (l) => io.err(`${l}\n`) });
      io.out(o.json ? JSON.stringify(r, null, 2) + '\n' : formatModelBench(r));
    });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await modelBenchCommand(new Command('bench/model.ts')).parseAsync();
}
