/**
 * The training run's configuration: ONE flat object, every field documented with its default
 * (nanoGPT style), validated by a zod schema. Sources, later ones winning: the defaults below, a
 * JSON or YAML file (`--config FILE`), then command-line flags (the kebab-case of each field, e.g.
 * `--learning-rate 3e-4`, `--target-kl null`, `--mlp-hidden 64,64`). Unknown fields are an error
 * naming them. The PPO fields keep the names of CleanRL's ppo.py, where the paper's settings come from.
 *
 * Defaults vs the paper. The defaults are the settings that made the LLM policy learn from its prompt
 * in the learning study (docs/learning.md): myopic advantages (gamma = gae_lambda = 0), rollouts of 200
 * steps with 4 epochs of minibatches of 50, a constant learning rate of 1e-3, entropy 0.02, no KL
 * penalty, the pretrained model shipped in models/ read through the mean of its final hidden states.
 * The paper's PPO values are PAPER_PPO below (configs/paper-ppo.yaml, configs/paper-smollm2.yaml).
 *
 * How the paper's batch numbers are read (they do not all fit one strict reading; this one is coherent):
 *   - batch_size  = num_steps * num_envs = 40 samples collected per update (the rollout).
 *   - num_updates = floor(total_timesteps / batch_size) = floor(13860 / 40) = floor(346.5) = 346;
 *     the half rollout that does not fit is not collected (346 * 40 = 13840 environment steps).
 *   - Each of the update_epochs epochs shuffles the batch and cuts it, in order, into minibatches of
 *     minibatch_size = 32 samples; the last minibatch keeps the remainder (40 = 32 + 8), as CleanRL's
 *     slicing `b_inds[start:start + minibatch_size]` would, so every sample is used in every epoch and
 *     an epoch makes ceil(40 / 32) = 2 optimizer steps.
 *   - A minibatch is processed as micro-batches of minibatch_size / gradient_accumulation_steps =
 *     32 / 8 = 4 samples (the remainder minibatch of 8: two micro-batches of 4). Gradients of all
 *     micro-batches are summed, each sample weighted 1/n for a minibatch of n samples, and then ONE
 *     clipped optimizer step is taken: the step equals the step on the whole minibatch's mean loss.
 *     Advantages are normalised over the whole minibatch (not per micro-batch).
 * Over the run: 346 updates * 1 epoch * 2 steps = 692 optimizer steps, with the learning rate
 * annealed linearly per update from learning_rate to learning_rate / 346.
 *
 * Settings of the paper we do not have: dropout 0 (no dropout anywhere) and train_dtype float16
 * (training here is float32 on the CPU; frozen_dtype bfloat16 stores the frozen weights in half the
 * memory, with float32 arithmetic).
 *
 * Choices the paper leaves open, with our defaults: reward_scale 100 (the environment's reward is a
 * daily log return of ~0.01; the untrained value head's outputs are ~0.5, which would swamp GAE
 * advantages built from such rewards: measured on the synthetic market, the MLP learns the news signal
 * with 100 and barely moves with 1); bootstrap_truncation true (an episode end at the step limit or
 * the window's end is a time limit, not a terminal state); AdamW eps 1e-5 and weight_decay 0 (CleanRL's
 * Adam); the training window's episodes start at random days (start random).
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { z } from 'zod';
import YAML from 'yaml';
import { DEFAULT_ROLLOUT_CACHE_MB } from './rollout-activations.js';

/** PEFT's names of the decoder's linear maps, the values lora_target_modules takes (src/model/lora.ts LORA_MODULE_NAMES). */
export const LORA_MODULE_CHOICES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

/**
 * The LLM a run uses when none is given: the small model pretrained here on news, then on trading
 * transcripts of other synthetic markets (models/flag-trader-small/README.md).
 */
export const DEFAULT_MODEL = 'flag-trader-small';

/**
 * The paper's PPO values (CleanRL names), which were the defaults before the learning study
 * (docs/learning.md) measured that they leave the policy at Buy & Hold: `configs/paper-ppo.yaml` holds
 * them, and `configs/paper-smollm2.yaml` the whole paper setting.
 */
export const PAPER_PPO = {
  total_timesteps: 13860, learning_rate: 5e-4, num_envs: 1, num_steps: 40, anneal_lr: true, gamma: 0.95,
  gae_lambda: 0.98, update_epochs: 1, norm_adv: true, clip_coef: 0.2, clip_vloss: true, ent_coef: 0.05,
  vf_coef: 0.5, kl_coef: 0.05, max_grad_norm: 0.5, target_kl: null, gradient_accumulation_steps: 8, minibatch_size: 32,
} as const;

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD');

const schema = z.strictObject({
  // ---- run ----
  seed: z.number().int().default(1).describe('Seed of every random stream of the run (weight init, action sampling, episode starts, minibatch shuffling).'),
  checkpoint_every: z.number().int().min(1).default(10).describe('Write a checkpoint every this many updates (and always after the last one).'),
  threads: z.number().int().min(0).default(0).describe('Compute threads for the native kernels; 0 = the backend default (all cores).'),

  // ---- policy ----
  policy: z.enum(['llm', 'mlp']).default('llm').describe('Policy network: `llm` (the FLAG-Trader policy) or `mlp` (ablation over numeric features).'),
  model: z.string().min(1).default(DEFAULT_MODEL).describe('LLM to load: a local folder, a Hub id, or random:<config> (random:tiny, random:small, random:smollm2-135m).'),
  trainable_layers: z.number().int().min(1).default(2).describe('LLM: number of top decoder layers that train (the rest are frozen); more than the model has is an error. 2 of the default model\'s 6 by default; the paper setting (configs/paper-smollm2.yaml) trains 4 of 30.'),
  model_seed: z.number().int().default(0).describe('Seed of random:<config> model weights (the stand-in "pretrained" base; fixed across run seeds like a real checkpoint).'),
  tokenizer: z.string().min(1).nullable().default(null).describe('LLM: tokenizer.json to use instead of the model folder\'s (e.g. SmolLM2\'s with random:smollm2-135m); null = the model\'s own, or the built-in byte tokenizer for random models.'),
  policy_head: z.enum(['lm', 'linear']).default('lm').describe('LLM policy head: `lm` = the LM head\'s logits of the action words at the answer position (the model\'s own answer: what its pretraining taught it is the prior PPO starts from); `linear` = a new linear head on what head_input selects.'),
  head_input: z.enum(['last', 'mean']).default('last').describe('LLM: what the policy and value heads read: `last` = the answer position\'s final hidden state (what the lm head must read); `mean` = the mean of the final hidden states of every position after the system turn (market, account, answer prefix), for linear heads on a model that was not taught to answer (docs/learning.md round 2).'),
  head_norm: z.enum(['running', 'global', 'none']).default('global').describe('LLM: `running` standardises what the linear heads read (policy head when linear, value head) per channel with running statistics of the rollouts, saved with the policy (PPO\'s observation normalisation); `global` centres each channel with the same running means but divides all channels by one running scale (the root mean channel variance), keeping the model\'s geometry; `none` feeds them the raw state. The lm head always reads the raw state.'),
  frozen_dtype: z.enum(['float32', 'bfloat16']).default('float32').describe('LLM: how the frozen weights are stored: `float32`, or `bfloat16` (the paper\'s train_dtype idea) = the embedding / LM head and every frozen layer\'s linear weights (every layer\'s with adapter lora) kept as bf16 and expanded to float32 where used: half their memory, the arithmetic still float32 (exactly a float32 model whose frozen weights are rounded to bf16). Trainable weights, adapters and heads are always float32.'),
  prefix_cache_mb: z.number().int().min(0).default(2048).describe('LLM: memory for cached frozen-layer outputs of prompt prefixes (the instructions; each day\'s market section, which recurs across episodes), in MiB; least recently used entries go first. Larger than a bare model\'s 256 (DEFAULT_PREFIX_CACHE_MB): a run revisits every day of its training window.'),
  rollout_cache_mb: z.number().int().min(0).default(DEFAULT_ROLLOUT_CACHE_MB).describe('LLM: memory for the rollout\'s training activations, in MiB, kept for the first minibatch of the update (it runs with the rollout\'s weights, so it skips the forward of every sample kept); 0 keeps none. Results are the same for every value; about 45 MB a sample at the paper\'s settings (T = 770, 4 trainable layers), so the default keeps all 41 forwards of a 40-step rollout.'),
  mlp_hidden: z.array(z.number().int().min(1)).min(1).default([64, 64]).describe('MLP: hidden layer sizes (tanh), e.g. 64,64.'),
  adapter: z.string().min(1).default('none').describe('LLM: `none` trains the top trainable_layers layers\' weights and the final norm; `lora` freezes every base weight (final norm included) and trains LoRA adapters (W x + lora_alpha/lora_r * B A x, as PEFT) on lora_target_modules of the top trainable_layers layers (every layer with lora_layers all), with the heads; a folder path (a PEFT LoRA adapter: adapter_config.json + adapter_model.safetensors, e.g. a finished run\'s adapter/) = lora starting from that adapter, whose r, alpha, modules and layers must equal the lora_* fields and trainable_layers. A finished LoRA run writes its adapter in PEFT\'s layout to <run>/adapter/.'),
  lora_r: z.number().int().min(1).default(8).describe('LoRA rank r (adapter lora): A is [r, in], B [out, r].'),
  lora_alpha: z.number().positive().default(16).describe('LoRA alpha (adapter lora): the update is scaled by lora_alpha / lora_r.'),
  lora_target_modules: z.array(z.enum(LORA_MODULE_CHOICES)).min(1).default(['q_proj', 'v_proj']).describe(`LoRA: the linear maps that get adapters (adapter lora), comma-separated among ${LORA_MODULE_CHOICES.join(', ')}; PEFT's default for Llama and Qwen is q_proj,v_proj.`),
  lora_layers: z.enum(['top', 'all']).default('top').describe('LoRA: which layers get adapters (adapter lora): `top` = the top trainable_layers layers (the frozen-prefix cache covers every layer below them), `all` = every layer of the model (trainable_layers is then not used).'),

  // ---- prompt (LLM) ----
  prompt_max_tokens: z.number().int().min(1).nullable().default(1024).describe('LLM prompt budget in tokens of the model\'s tokenizer (news is cut first); null = unlimited. 1024 suits the byte tokenizer of random models with the compact prompt; the paper setting (configs/paper-smollm2.yaml) uses 768 SmolLM2 tokens: the uncuttable parts of the full prompt take about 620.'),
  prompt_style: z.enum(['full', 'compact']).default('compact').describe('LLM prompt: `full` (paper-like, every indicator explained) or `compact` (short; for byte-level tokenizers, where each character is a token).'),
  prompt_max_chars: z.number().int().min(1).nullable().default(null).describe('LLM prompt budget in characters; null = unlimited.'),

  // ---- data ----
  data: z.string().min(1).default('synthetic').describe('Market data file (Yahoo CSV, long CSV[.gz], INVESTOR-BENCH JSON), or `synthetic` for the built-in market.'),
  format: z.enum(['auto', 'yahoo', 'long', 'investorbench']).default('auto').describe('Data file format.'),
  ticker: z.string().min(1).nullable().default(null).describe('Ticker to select from a long-format file.'),
  price_column: z.string().min(1).nullable().default(null).describe('Price column of a CSV file; null = the loader default (Adj Close).'),
  synthetic_seed: z.number().int().default(1).describe('Seed of the built-in synthetic market (fixed across run seeds, so seeds train on the same market).'),
  synthetic_news_accuracy: z.number().min(0).max(1).default(0.7).describe('Probability that a headline of the built-in synthetic market carries its regime\'s sentiment (else one of the other two): how informative the news are.'),
  synthetic_news_tags: z.boolean().default(true).describe('Whether the built-in synthetic market\'s headlines end with their "(Sentiment: ...)" tag; false = the words alone carry the sentiment (same seed, same prices and words).'),
  synthetic_days: z.number().int().min(10).default(2000).describe('Length of the built-in synthetic market in business days.'),
  train_start: isoDate.nullable().default(null).describe('First date of the training window; null = the series\' first date.'),
  train_end: isoDate.nullable().default(null).describe('Last date of the training window; null = the date at 70% of the series.'),
  test_start: isoDate.nullable().default(null).describe('First date of the test window (evaluate); null = the first date after train_end.'),
  test_end: isoDate.nullable().default(null).describe('Last date of the test window (evaluate); null = the series\' last date.'),
  allow_text_overlap: z.boolean().default(false).describe('LLM: run even when the test window starts on or before the model\'s text_cutoff (flag_trader.json), so its pretraining text covers the evaluated period; recorded in the run and the report.'),

  // ---- environment ----
  mode: z.enum(['benchmark', 'account']).default('benchmark').describe('Trading semantics: `benchmark` (positions +1/-1/0, log-return reward) or `account` (cash and shares).'),
  lookback: z.number().int().min(0).default(20).describe('Days of price history in each observation (before day t).'),
  cost_bps: z.number().min(0).max(10000).default(0).describe('Benchmark mode: cost per unit of position change, in basis points (at most 10000 = 100%).'),
  fee_bps: z.number().min(0).lt(10000).default(0).describe('Account mode: fee per trade, in basis points of notional.'),
  allow_short: z.boolean().default(false).describe('Account mode: whether sell may open a short position.'),
  start: z.enum(['random', 'fixed', 'first']).default('random').describe('Where training episodes start in the training window (random = uniform over starts that leave a full episode).'),
  max_episode_steps: z.number().int().min(1).default(65).describe('Episode length limit in steps (a time limit: see bootstrap_truncation).'),

  // ---- PPO (CleanRL names; the paper's values) ----
  total_timesteps: z.number().int().min(1).default(13860).describe('Environment steps of the run; num_updates = floor(total_timesteps / (num_steps * num_envs)).'),
  learning_rate: z.number().min(0).default(1e-3).describe('AdamW learning rate (initial value when annealed).'),
  llm_lr_scale: z.number().min(0).default(1).describe('LLM: the trainable decoder layers learn at llm_lr_scale x learning_rate, the heads at learning_rate (pretrained layers take smaller steps than fresh heads); anneal_lr scales both alike.'),
  num_envs: z.number().int().min(1).default(1).describe('Parallel environments in the rollout (each with its own episode-start stream).'),
  num_steps: z.number().int().min(1).default(200).describe('Rollout steps per environment per update.'),
  anneal_lr: z.boolean().default(false).describe('Anneal the learning rate linearly: lr = (1 - (update - 1) / num_updates) * learning_rate.'),
  gamma: z.number().min(0).max(1).default(0).describe('Discount factor. 0 by default: in benchmark mode without costs the action does not change later rewards, so the one-day reward is the whole return and every later reward only adds noise to the advantage (measured: see docs/learning.md); raise it with costs or in account mode.'),
  gae_lambda: z.number().min(0).max(1).default(0).describe('GAE lambda.'),
  update_epochs: z.number().int().min(1).default(4).describe('Passes over the rollout per update.'),
  norm_adv: z.boolean().default(true).describe('Normalise advantages per minibatch (mean 0, std 1; a minibatch of one sample is left as is).'),
  clip_coef: z.number().min(0).default(0.2).describe('PPO clip range for the ratio (and for the value when clip_vloss).'),
  clip_vloss: z.boolean().default(true).describe('Clip the value loss around the rollout value estimate.'),
  ent_coef: z.number().min(0).default(0.1).describe('Entropy bonus coefficient.'),
  vf_coef: z.number().min(0).default(0.5).describe('Value loss coefficient.'),
  kl_coef: z.number().min(0).default(0.2).describe('Coefficient of the exact KL(pi || pi_ref) penalty to the frozen initial policy: it keeps a pretrained policy near what it knew while the rewards\' noise pulls it about (0.2 measured: docs/learning.md round 4).'),
  max_grad_norm: z.number().positive().default(0.5).describe('Global gradient-norm clipping threshold.'),
  target_kl: z.number().positive().nullable().default(null).describe('Stop an update\'s epochs early when the epoch\'s mean approx_kl exceeds this; null = never.'),
  gradient_accumulation_steps: z.number().int().min(1).default(1).describe('Micro-batches per minibatch (micro-batch = minibatch_size / this); gradients summed before one optimizer step. Bookkeeping only: samples already run forward and backward one at a time, so the results and the memory are the same for every value (docs/training.md).'),
  minibatch_size: z.number().int().min(1).default(100).describe('Samples per optimizer step (the last minibatch of an epoch keeps the remainder).'),
  reward_scale: z.number().positive().default(100).describe('Multiplies the environment reward before GAE (daily log returns are ~0.01; e.g. 100 = rewards in percent). Metrics report unscaled rewards.'),
  bootstrap_truncation: z.boolean().default(true).describe('At a time-limit episode end (max steps, window end) add gamma * V(final observation) to the last reward; false = treat every episode end as terminal, as CleanRL does.'),

  // ---- optimizer ----
  adam_beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW beta1.'),
  adam_beta2: z.number().min(0).lt(1).default(0.999).describe('AdamW beta2.'),
  adam_eps: z.number().positive().default(1e-5).describe('AdamW epsilon (CleanRL PPO uses 1e-5).'),
  weight_decay: z.number().min(0).default(0).describe('AdamW decoupled weight decay (0 = Adam, as CleanRL).'),
});

export type TrainConfig = z.output<typeof schema>;
export type ConfigKey = keyof TrainConfig;

/** Fraction of the series used for training when train_end is not given. */
export const DEFAULT_TRAIN_FRACTION = 0.7;

export const CONFIG_KEYS = Object.keys(schema.shape) as ConfigKey[];

/** kebab-case flag for a field: learning_rate -> learning-rate. */
export function flagName(key: string): string {
  return key.replace(/_/g, '-');
}

/** One row per field: name, flag, documentation and default, for help texts and docs. */
export function configFieldDocs(): Array<{ key: ConfigKey; flag: string; doc: string; default: unknown }> {
  const defaults = schema.parse({});
  return CONFIG_KEYS.map((key) => ({ key, flag: `--${flagName(key)}`, doc: schema.shape[key].description ?? '', default: defaults[key] }));
}

export function defaultConfig(): TrainConfig {
  return schema.parse({});
}

/** The quantities derived from the config (see the module comment). */
export interface RunShape {
  batchSize: number;
  numUpdates: number;
  microBatchSize: number;
  /** Optimizer steps per epoch: ceil(batchSize / minibatch_size). */
  minibatchesPerEpoch: number;
  /** total_timesteps - numUpdates * batchSize: steps that do not fill a rollout and are not run. */
  unusedTimesteps: number;
}

export function runShape(c: TrainConfig): RunShape {
  const batchSize = c.num_steps * c.num_envs;
  const numUpdates = Math.floor(c.total_timesteps / batchSize);
  return {
    batchSize,
    numUpdates,
    microBatchSize: c.minibatch_size / c.gradient_accumulation_steps,
    minibatchesPerEpoch: Math.ceil(batchSize / c.minibatch_size),
    unusedTimesteps: c.total_timesteps - numUpdates * batchSize,
  };
}

/**
 * Validate a (partial) config object, filling defaults. `source` names where it came from (a file,
 * "command line", ...) for the error message, which lists every problem with its field.
 */
export function parseTrainConfig(input: unknown, source: string): TrainConfig {
  const r = schema.safeParse(input);
  if (!r.success) {
    const problems = r.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown field(s) ${i.keys.join(', ')} (known fields: ${CONFIG_KEYS.join(', ')})`;
      return `${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}`;
    });
    throw new Error(`invalid training config (${source}): ${problems.join('; ')}`);
  }
  const c = r.data;
  const problems: string[] = [];
  const shape = runShape(c);
  if (c.minibatch_size % c.gradient_accumulation_steps !== 0) {
    problems.push(`minibatch_size ${c.minibatch_size} must be a multiple of gradient_accumulation_steps ${c.gradient_accumulation_steps} (micro-batches are equal)`);
  }
  if (c.minibatch_size > shape.batchSize) {
    problems.push(`minibatch_size ${c.minibatch_size} exceeds the rollout batch num_steps * num_envs = ${shape.batchSize}`);
  }
  if (shape.numUpdates < 1) {
    problems.push(`total_timesteps ${c.total_timesteps} is less than one rollout of num_steps * num_envs = ${shape.batchSize} steps`);
  }
  for (const [a, b] of [['train_start', 'train_end'], ['test_start', 'test_end']] as const) {
    const x = c[a], y = c[b];
    if (x !== null && y !== null && x > y) problems.push(`${a} ${x} is after ${b} ${y}`);
  }
  if (c.train_end !== null && c.test_start !== null && c.test_start <= c.train_end) {
    problems.push(`test_start ${c.test_start} must come after train_end ${c.train_end} (the test window is held out)`);
  }
  // Settings of the other trading mode would be silently ignored: refuse them.
  if (c.mode === 'benchmark' && (c.fee_bps !== 0 || c.allow_short)) {
    problems.push('fee_bps and allow_short apply only to mode account (costs in benchmark mode: cost_bps)');
  }
  if (c.mode === 'account' && c.cost_bps !== 0) problems.push('cost_bps applies only to mode benchmark (fees in account mode: fee_bps)');
  // LoRA settings without LoRA would be silently ignored: refuse them.
  if (c.adapter === 'none') {
    const defaults = schema.parse({});
    const set = (['lora_r', 'lora_alpha', 'lora_target_modules', 'lora_layers'] as const).filter((k) => JSON.stringify(c[k]) !== JSON.stringify(defaults[k]));
    if (set.length) problems.push(`${set.join(', ')} ${set.length > 1 ? 'apply' : 'applies'} only with adapter lora (or an adapter folder)`);
  }
  if (c.adapter !== 'none' && c.policy !== 'llm') problems.push(`adapter ${c.adapter} applies only to policy llm`);
  if (c.frozen_dtype !== 'float32' && c.policy !== 'llm') problems.push(`frozen_dtype ${c.frozen_dtype} applies only to policy llm`);
  if (new Set(c.lora_target_modules).size !== c.lora_target_modules.length) problems.push(`lora_target_modules lists a module twice: ${c.lora_target_modules.join(',')}`);
  if (problems.length) throw new Error(`invalid training config (${source}): ${problems.join('; ')}`);
  return c;
}

/** Read a JSON (.json) or YAML (.yaml/.yml) config file into a plain object (not yet validated). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read config file ${path}: ${(e as Error).message}`); }
  const ext = extname(path).toLowerCase();
  let value: unknown;
  try {
    if (ext === '.json') value = JSON.parse(text);
    else if (ext === '.yaml' || ext === '.yml') value = YAML.parse(text);
    else throw new Error(`unknown config file extension ${JSON.stringify(ext)}; expected .json, .yaml or .yml`);
  } catch (e) {
    throw new Error(`config file ${path}: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`config file ${path}: expected an object of fields at the top level`);
  }
  return value as Record<string, unknown>;
}

/**
 * Turn a command-line string into the value the field's schema accepts: the string itself, or a
 * number, a boolean (`true`/`false`), `null`, or a comma-separated list of numbers or of names, whichever the
 * field accepts first (so a ticker "7203" stays a string, `--seed 7` becomes a number). A value no
 * reading fits is an error naming the flag and what the field expects.
 */
const LIST_DEFAULTS: Partial<Record<ConfigKey, unknown>> = schema.parse({});

export function parseFlagValue(key: ConfigKey, raw: string): unknown {
  const field = schema.shape[key];
  const candidates: unknown[] = [raw];
  const t = raw.trim();
  if (t !== '' && Number.isFinite(Number(t))) candidates.push(Number(t));
  if (t === 'true' || t === 'false') candidates.push(t === 'true');
  if (t === 'null') candidates.push(null);
  if (/^\s*-?[\d.e+-]+(\s*,\s*-?[\d.e+-]+)*\s*$/i.test(t)) candidates.push(t.split(',').map((s) => Number(s.trim())));
  // A list of names only for list fields (so that a failing date is reported as a date, not a list).
  if (t !== '' && Array.isArray(LIST_DEFAULTS[key])) candidates.push(t.split(',').map((s) => s.trim()));
  const errors: string[] = [];
  for (const v of candidates) {
    const r = field.safeParse(v);
    if (r.success) return r.data;
    errors.push(r.error.issues[0]?.message ?? 'invalid value');
  }
  // The most telling complaint: from the first typed reading (a number is too big, not an integer...).
  const msg = errors[Math.min(1, errors.length - 1)]!;
  throw new Error(`--${flagName(key)} ${JSON.stringify(raw)}: ${msg}`);
}
