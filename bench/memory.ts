/**
 * Peak memory of a short training run, for each way of storing the frozen weights (frozen_dtype float32
 * or bfloat16) and each way of training (top-K or LoRA). The default model is the Qwen2.5-0.5B shape with
 * seeded random weights (bench/configs/qwen2.5-0.5b/config.json: hidden 896, 24 layers, 14 heads, 2 KV
 * heads, MLP 4864, vocabulary 151936, tied embeddings, rope_theta 1e6, q/k/v biases; 494,032,768
 * parameters) read through the byte tokenizer, on the built-in synthetic market.
 *
 *   node --import tsx bench/memory.ts [--json] [--model SPEC] [--dtypes float32,bfloat16] [--modes topk,lora] [KEY=VALUE ...]
 *
 * Each run is its own child process; it reports the RSS once the policy is built (weights loaded) and
 * the peak RSS of the whole run (process.resourceUsage().maxRSS), the bytes of the weights as stored
 * (weightStorageBytes), the run's time and steps/s, and how many bf16 values were expanded. The run is short on purpose (two PPO updates of 4 steps): it is the
 * weights, the caches and the activations that decide the peak, not the length of the run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { parseTrainConfig } from '../src/rl/config.js';
import { runTraining } from '../src/rl/run.js';
import { bf16ExpandedValues, weightStorageBytes } from '../src/model/llama.js';
import { builtinConfig, BUILTIN_CONFIGS } from '../src/model/configs.js';
import { parseLlamaConfig } from '../src/model/parse-config.js';
import type { LlamaConfig } from '../src/model/config.js';
import { readJson } from '../src/util/read-json.js';
import { configField } from './config-field.js';
import { MODES, type Mode } from './train-modes.js';

type Dtype = 'float32' | 'bfloat16';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The config's folder in the source tree (the compiled script runs from dist/bench). */
const QWEN_CONFIG = join(HERE.endsWith(join('dist', 'bench')) ? join(HERE, '..', '..', 'bench') : HERE, 'configs', 'qwen2.5-0.5b', 'config.json');

/** The short run: 2 updates of 4 steps, one epoch, the top 2 layers (or adapters on all their maps). */
export const MEMORY_RUN = {
  policy: 'llm', trainable_layers: 2, synthetic_days: 200, num_steps: 4, total_timesteps: 8, minibatch_size: 4, update_epochs: 1,
  prompt_style: 'compact', prompt_max_tokens: 512, checkpoint_every: 100,
};

export interface MemoryRow {
  model: string;
  mode: Mode;
  frozenDtype: Dtype;
  weightBytes: number;
  rssAfterLoadBytes: number;
  peakRssBytes: number;
  seconds: number;
  stepsPerSecond: number;
  /** bf16 values expanded to float32 during the run (0 for float32 storage). */
  expandedValues: number;
}

async function child(model: string, mode: Mode, dtype: Dtype, fields: Record<string, unknown>): Promise<MemoryRow> {
  const config = parseTrainConfig({ ...MEMORY_RUN, model, ...MODES[mode], frozen_dtype: dtype, ...fields }, `bench/memory (${mode}, ${dtype})`);
  // The weights as stored (computed from the config as loadModel stores them), and the RSS once the
  // run's policy is built (onStart comes after the model is loaded, before the first update).
  const weightBytes = weightStorageBytes(modelConfig(model), dtype, config.adapter === 'none' ? config.trainable_layers : 0);
  let rssAfterLoadBytes = 0;
  const dir = mkdtempSync(join(tmpdir(), 'flag-memory-bench-'));
  try {
    const t0 = performance.now();
    const r = await runTraining({ out: join(dir, 'run'), config, onStart: () => { rssAfterLoadBytes = process.memoryUsage().rss; } });
    const seconds = (performance.now() - t0) / 1000;
    return {
      model, mode, frozenDtype: dtype, weightBytes, rssAfterLoadBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, seconds,
      stepsPerSecond: (r.updatesDone * r.record.derived.batch_size) / seconds, expandedValues: bf16ExpandedValues(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The config of a model spec without loading its weights (random:<builtin>, random:<config.json>, or a folder). */
function modelConfig(spec: string): LlamaConfig {
  const what = spec.startsWith('random:') ? spec.slice('random:'.length) : spec;
  if (spec.startsWith('random:') && what in BUILTIN_CONFIGS) return builtinConfig(what);
  const path = what.endsWith('.json') ? what : join(what, 'config.json');
  return parseLlamaConfig(readJson(path, 'model config'), path);
}

interface Options { json?: boolean; model: string; dtypes: Dtype[]; modes: Mode[]; child?: string }

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

async function main(fields: Record<string, unknown>, o: Options): Promise<void> {
  if (o.child !== undefined) {
    const [mode, dtype] = o.child.split(':');
    process.stdout.write(`${JSON.stringify(await child(o.model, mode as Mode, dtype as Dtype, fields))}\n`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const kv = Object.entries(fields).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  const rows: MemoryRow[] = [];
  for (const mode of o.modes) {
    for (const dtype of o.dtypes) {
      const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', `${mode}:${dtype}`, '--model', o.model, ...kv],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`bench/memory: the ${mode} ${dtype} run failed (exit ${r.status})`);
      const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryRow;
      rows.push(row);
      if (!o.json) {
        process.stdout.write(`${mode.padEnd(4)} frozen ${dtype.padEnd(8)}: weights ${mib(row.weightBytes)}, RSS after loading ${mib(row.rssAfterLoadBytes)}, peak RSS ${mib(row.peakRssBytes)}; `
          + `${row.seconds.toFixed(0)} s, ${row.stepsPerSecond.toFixed(2)} steps/s, ${(row.expandedValues / 1e9).toFixed(2)}G bf16 values expanded\n`);
      }
    }
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ config: { ...MEMORY_RUN, model: o.model, ...fields }, modes: MODES, rows })}\n`);
}

const list = <T extends string>(flag: string, allowed: readonly T[]) => (v: string): T[] => v.split(',').map((s) => {
  if (!(allowed as readonly string[]).includes(s)) throw new Error(`${flag}: expected ${allowed.join(' or ')}, got ${JSON.stringify(s)}`);
  return s as T;
});

await new Command('bench/memory.ts')
  .description('peak RSS of a short training run for each frozen_dtype (float32, bfloat16) and each mode (top-K, LoRA)')
  .argument('[fields...]', 'training-config fields, KEY=VALUE', configField, {})
  .option('--json', 'print one JSON object')
  .option('--model <spec>', 'the model (default: random weights of the Qwen2.5-0.5B config)', `random:${QWEN_CONFIG}`)
  .option('--dtypes <list>', 'frozen_dtype values, comma-separated', list('--dtypes', ['float32', 'bfloat16'] as const), ['float32', 'bfloat16'] as Dtype[])
  .option('--modes <list>', 'topk and/or lora, comma-separated', list('--modes', ['topk', 'lora'] as const), ['topk', 'lora'] as Mode[])
  .addOption(new Option('--child <mode:dtype>', 'internal: run one case, print its JSON row').hideHelp())
  .action((fields: Record<string, unknown>, o: Options) => main(fields, o))
  .parseAsync();
