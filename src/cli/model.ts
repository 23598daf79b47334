/**
 * Model commands:
 *   flag-trader model info --model M [--json]           config, parameter counts, backend
 *   flag-trader model forward --model M --ids 1,2,3     last-position logits over the full vocabulary
 *   flag-trader model merge --model M --adapter DIR --out OUT   a LoRA adapter folded into the weights
 *   flag-trader generate --model M --prompt TEXT        greedy or sampled continuation (--chat: the chat template)
 *   flag-trader bench [--json]                          the model benchmark (bench/model.ts)
 *   flag-trader bench-train [--json] [--compare]        the PPO training-loop benchmark (bench/train.ts)
 * M is a model folder, a Hub id, or random:<config> (seeded random weights; --model-seed, as in
 * `train`; --weights-seed is its old name, still accepted). `--adapter DIR` (a PEFT LoRA folder)
 * merges that adapter into the weights as they load, everywhere a model is loaded here.
 */
import { Option, type Command } from 'commander';
import { getBackend, type BackendChoice } from '../kernels/index.js';
import type { Backend } from '../kernels/backend.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModelFolder, writeTokenizerFiles, type LoadedModel } from '../model/load.js';
import { LORA_MODULE_NAMES, loraParameterCount } from '../model/lora.js';
import { MODEL_META_FILE } from '../model/meta.js';
import type { FloatDtype } from '../model/safetensors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { DEFAULT_TRAINABLE_LAYERS, LlamaModel, eosIds, parameterCounts, weightStorageBytes } from '../model/llama.js';
import { FROZEN_DTYPES, type FrozenDtype, type StoredTensor } from '../model/bf16.js';
import { describeFamily } from '../model/families.js';
import { Rng } from '../util/rng.js';
import { modelBenchCommand } from '../../bench/model.js';
import { trainBenchCommand } from '../../bench/train.js';
import { backendChoice, intList, nonNegativeInt, nonNegativeNumber, positiveInt, STDIO, type CommandIo } from '../util/options.js';
import { seedOption } from '../util/seed.js';

interface CommonOpts {
  model: string;
  modelSeed?: number;
  /** The deprecated name of --model-seed. */
  weightsSeed?: number;
  tokenizer?: string;
  adapter?: string;
  frozenDtype?: FrozenDtype;
  backend: BackendChoice;
  threads?: number;
  trainableLayers?: number;
}

function addCommon(cmd: Command): Command {
  return cmd
    .option('--model <spec>', 'model folder, Hub id, or random:<smollm2-135m|small|tiny|path/config.json>', 'random:tiny')
    .option('--model-seed <n>', 'seed of the random weights (random: specs; default 0)', seedOption('--model-seed'))
    .addOption(new Option('--weights-seed <n>', 'deprecated name of --model-seed').argParser(seedOption('--weights-seed')).hideHelp())
    .option('--tokenizer <path>', 'tokenizer.json (or a folder with one) instead of the model\'s own')
    .option('--adapter <dir>', 'a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) merged into the weights as they load')
    .addOption(new Option('--frozen-dtype <dtype>', 'store the frozen matrices (embedding, layers below the top K) as bfloat16, expanded to float32 where used').choices(FROZEN_DTYPES as string[]).default('float32'))
    .option('--backend <name>', 'compute backend: native, typescript or auto', backendChoice, 'auto')
    .option('--threads <n>', 'threads for BLAS and the fused kernels (default: all cores)', positiveInt('--threads'));
}

/** The seed of random weights: --model-seed, or its old name --weights-seed (not both). */
function modelSeed(o: CommonOpts): number {
  if (o.modelSeed !== undefined && o.weightsSeed !== undefined) {
    throw new Error('--weights-seed is the old name of --model-seed: give only --model-seed');
  }
  return o.modelSeed ?? o.weightsSeed ?? 0;
}

async function open(o: CommonOpts): Promise<{ loaded: LoadedModel<StoredTensor>; backend: Backend; model: LlamaModel }> {
  const K = o.trainableLayers ?? DEFAULT_TRAINABLE_LAYERS;
  const loaded = await loadModel(o.model, {
    seed: modelSeed(o), ...(o.tokenizer ? { tokenizerPath: o.tokenizer } : {}), ...(o.adapter !== undefined && { adapter: o.adapter }),
    frozenDtype: o.frozenDtype ?? 'float32', float32Layers: K,
  });
  const backend = getBackend(o.backend);
  if (o.threads !== undefined) backend.setThreads(o.threads);
  const L = loaded.config.num_hidden_layers;
  const model = new LlamaModel(loaded.config, loaded.weights, backend, { trainableLayers: o.trainableLayers ?? Math.min(DEFAULT_TRAINABLE_LAYERS, L) });
  return { loaded, backend, model };
}

export function modelInfo(loaded: LoadedModel<StoredTensor>, backend: Backend, K: number, model?: LlamaModel): Record<string, unknown> {
  const c = loaded.config;
  const counts = parameterCounts(c, K);
  const byK: Record<number, number> = {};
  for (let k = 1; k <= c.num_hidden_layers; k++) byK[k] = parameterCounts(c, k).trainable;
  return {
    spec: loaded.spec, source: loaded.source, fingerprint: loaded.fingerprint, family: describeFamily(c), config: c,
    parameters: { total: counts.total, embedding: counts.embedding, lmHead: counts.lmHead, perLayer: counts.perLayer, trainableByK: byK },
    trainableLayers: K, trainableParameters: counts.trainable,
    // Resident weight memory for each storage choice (frozen_dtype), and what this process holds.
    memory: {
      weightBytes: {
        float32: weightStorageBytes(c, 'float32'),
        bfloat16: weightStorageBytes(c, 'bfloat16', K),
        bfloat16Lora: weightStorageBytes(c, 'bfloat16', 0),
      },
      loaded: { frozenDtype: loaded.frozenDtype, weightBytes: model?.weightBytes() ?? null, rssBytes: process.memoryUsage().rss },
    },
    ...(loaded.adapter && { adapter: { dir: loaded.adapter.dir, ...loaded.adapter.spec, parameters: loraParameterCount(c, loaded.adapter.spec), merged: true } }),
    tokenizer: { kind: loaded.tokenizer.kind, vocabSize: loaded.tokenizer.vocabSize },
    backend: { name: backend.name, threads: backend.getThreads() },
  };
}

/**
 * A merged model's folder: config.json, model.safetensors, the tokenizer's files and the base model's
 * flag_trader.json (its text cutoff still applies to what the merged model has read).
 */
export function writeMergedModel(out: string, loaded: LoadedModel<StoredTensor>, dtype: FloatDtype = 'F32'): void {
  saveModelFolder(out, loaded.config, loaded.weights, { dtype });
  writeTokenizerFiles(out, loaded);
  if (loaded.dir !== null && existsSync(join(loaded.dir, MODEL_META_FILE))) writeFileAtomic(join(out, MODEL_META_FILE), readFileSync(join(loaded.dir, MODEL_META_FILE)));
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

export function registerModel(program: Command, io: CommandIo = STDIO): void {
  const model = program.command('model').description('inspect and run the Llama decoder');

  addCommon(model.command('info').description('config, parameter counts (total and trainable per K), backend'))
    .option('--trainable-layers <k>', `trainable top layers K (default ${DEFAULT_TRAINABLE_LAYERS}, or all when fewer)`, positiveInt('--trainable-layers'))
    .option('--json', 'print JSON')
    .action(async (o: CommonOpts & { json?: boolean }) => {
      const { loaded, backend, model: m } = await open(o);
      const info = modelInfo(loaded, backend, m.K, m);
      if (o.json) { io.out(JSON.stringify(info, null, 2) + '\n'); return; }
      const c = loaded.config;
      const p = info.parameters as { total: number; embedding: number; perLayer: number; trainableByK: Record<number, number> };
      const mem = info.memory as { weightBytes: { float32: number; bfloat16: number; bfloat16Lora: number }; loaded: { frozenDtype: string; weightBytes: number | null; rssBytes: number } };
      const ks = [...new Set([1, 2, 4, 8, m.K, c.num_hidden_layers])].filter((k) => k <= c.num_hidden_layers).sort((a, b) => a - b);
      io.out([
        `model       ${loaded.spec} (${loaded.source}), fingerprint ${loaded.fingerprint.slice(0, 16)}`,
        `family      ${describeFamily(c)}`,
        `shape       hidden ${c.hidden_size}, layers ${c.num_hidden_layers}, heads ${c.num_attention_heads} (kv ${c.num_key_value_heads}, dim ${c.head_dim}), mlp ${c.intermediate_size}, vocab ${c.vocab_size}`,
        `            rope_theta ${c.rope_theta}, rms_norm_eps ${c.rms_norm_eps}, max positions ${c.max_position_embeddings}, ${c.tie_word_embeddings ? 'tied' : 'untied'} embeddings`,
        `parameters  ${fmtCount(p.total)} total (${p.total}); embedding ${fmtCount(p.embedding)}, per layer ${fmtCount(p.perLayer)}`,
        `trainable   ${ks.map((k) => `K=${k}: ${fmtCount(p.trainableByK[k]!)}`).join(', ')} (top K layers + final norm; heads extra)`,
        `memory      weights float32 ${fmtBytes(mem.weightBytes.float32)}; frozen_dtype bfloat16 ${fmtBytes(mem.weightBytes.bfloat16)} (top ${m.K} layers float32), ${fmtBytes(mem.weightBytes.bfloat16Lora)} with adapter lora (every base weight bf16)`,
        `            loaded as ${mem.loaded.frozenDtype}: weights ${fmtBytes(mem.loaded.weightBytes!)}, process RSS ${fmtBytes(mem.loaded.rssBytes)}`,
        ...(loaded.adapter ? [`adapter     ${loaded.adapter.dir} merged: r ${loaded.adapter.spec.r}, alpha ${loaded.adapter.spec.alpha}, ${loaded.adapter.spec.targets.map((t) => LORA_MODULE_NAMES[t]).join(', ')} on layers ${loaded.adapter.spec.layers.join(', ')} (${fmtCount(loraParameterCount(c, loaded.adapter.spec))} parameters)`] : []),
        `tokenizer   ${loaded.tokenizer.kind}, vocab ${loaded.tokenizer.vocabSize}`,
        `backend     ${backend.name}, ${backend.getThreads()} threads`,
      ].join('\n') + '\n');
    });

  addCommon(model.command('forward').description('logits of the last position over the full vocabulary'))
    .requiredOption('--ids <list>', 'token ids, comma-separated', intList('--ids'))
    .option('--json', 'print {"logits": [...]}')
    .action(async (o: CommonOpts & { ids: number[]; json?: boolean }) => {
      const { model: m } = await open({ ...o, trainableLayers: 1 });
      const logits = m.fullLogits(m.forward(o.ids));
      if (o.json) { io.out(JSON.stringify({ logits: Array.from(logits) }) + '\n'); return; }
      const top = Array.from(logits, (v, i) => [i, v] as const).sort((a, b) => b[1] - a[1]).slice(0, 10);
      io.out(`top logits at position ${o.ids.length - 1}:\n${top.map(([i, v]) => `  ${String(i).padStart(6)}  ${v.toFixed(4)}`).join('\n')}\n`);
    });

  addCommon(model.command('merge').description('fold a LoRA adapter into the weights (W + alpha/r * B A) and write a Hugging Face model folder'))
    .requiredOption('--out <dir>', 'the model folder to write (config.json, model.safetensors, tokenizer files)')
    .addOption(new Option('--dtype <dtype>', 'storage dtype of the weights').choices(['F32', 'BF16', 'F16']).default('F32'))
    .action(async (o: CommonOpts & { out: string; dtype: FloatDtype }) => {
      if (o.adapter === undefined) throw new Error('model merge: --adapter DIR is required (the PEFT LoRA folder to fold in)');
      const loaded = await loadModel(o.model, { seed: modelSeed(o), ...(o.tokenizer ? { tokenizerPath: o.tokenizer } : {}), adapter: o.adapter, frozenDtype: o.frozenDtype ?? 'float32' });
      writeMergedModel(o.out, loaded, o.dtype);
      const a = loaded.adapter!;
      io.out(`merged ${o.adapter} (r ${a.spec.r}, alpha ${a.spec.alpha}, ${a.spec.targets.map((t) => LORA_MODULE_NAMES[t]).join(', ')} on layers ${a.spec.layers.join(', ')}) into ${loaded.spec}: wrote ${o.out} (${o.dtype})\n`);
    });

  addCommon(program.command('generate').description('continue a prompt with the model (greedy unless --temperature > 0)'))
    .requiredOption('--prompt <text>', 'the prompt text')
    .option('--max-new-tokens <n>', 'most tokens to generate', nonNegativeInt('--max-new-tokens'), 64)
    .option('--temperature <t>', '0 = greedy', nonNegativeNumber('--temperature'), 0)
    .option('--top-k <k>', 'sample only among the k most likely tokens (0 = all)', nonNegativeInt('--top-k'), 0)
    .option('--seed <n>', 'seed of the sampling (with --temperature > 0)', seedOption('--seed'), 0)
    .option('--chat', "wrap the prompt as a user turn in the model's chat template (ChatML when it has none)")
    .option('--json', 'print JSON')
    .action(async (o: CommonOpts & { prompt: string; maxNewTokens: number; temperature: number; topK: number; seed: number; chat?: boolean; json?: boolean }) => {
      const { loaded, model: m } = await open({ ...o, trainableLayers: 1 });
      const tok = loaded.tokenizer;
      const text = o.chat ? tok.applyChatTemplate([{ role: 'user', content: o.prompt }]) : o.prompt;
      const ids = tok.encode(text);
      const stopIds = [...new Set([tok.eosId, ...eosIds(loaded.config)])];
      const res = m.generate(ids, {
        maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, stopIds,
        ...(o.temperature > 0 ? { rng: new Rng(o.seed) } : {}),
      });
      const shown = res.finish === 'stop' ? res.tokens.slice(0, -1) : res.tokens;
      const out = tok.decode(shown);
      if (o.json) {
        io.out(JSON.stringify({ promptTokens: ids.length, tokens: res.tokens, text: out, finish: res.finish }) + '\n');
      } else {
        io.out(`${out}\n`);
        io.err(`[${ids.length} prompt tokens, ${res.tokens.length} generated, finish: ${res.finish}]\n`);
      }
    });

  modelBenchCommand(program.command('bench'), io);
  trainBenchCommand(program.command('bench-train'), io);
}
