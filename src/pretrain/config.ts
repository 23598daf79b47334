/**
 * Settings of `flag-trader pretrain`: one flat object, each field with its documented default,
 * validated by zod (the same style as the PPO config, src/rl/config.ts). The corpus sources and the
 * text cutoff are options of the command, not of this object, since they name files.
 *
 * Schedule: the learning rate rises linearly over warmup_steps to learning_rate, then follows a
 * cosine to learning_rate * min_lr_ratio at the last step.
 */
import { z } from 'zod';

const schema = z.strictObject({
  model: z.string().min(1).default('random:small').describe('Model to start from: random:<config> (tiny, small, smollm2-135m, or a config.json) or a model folder to continue pretraining.'),
  model_seed: z.number().int().default(0).describe('Seed of random:<config> initial weights.'),
  seed: z.number().int().default(1).describe('Seed of the document order, the held-out split\'s shuffle and the sampled training windows.'),
  seq_len: z.number().int().min(2).default(256).describe('Tokens per training sequence (packed across documents).'),
  batch_size: z.number().int().min(1).default(8).describe('Sequences per optimizer step.'),
  steps: z.number().int().min(1).default(3000).describe('Optimizer steps.'),
  learning_rate: z.number().positive().default(3e-3).describe('Peak AdamW learning rate.'),
  min_lr_ratio: z.number().min(0).max(1).default(0.1).describe('Final learning rate as a fraction of the peak (cosine decay).'),
  warmup_steps: z.number().int().min(0).default(100).describe('Linear warm-up steps.'),
  weight_decay: z.number().min(0).default(0).describe('AdamW decoupled weight decay (all parameters).'),
  adam_beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW beta1.'),
  adam_beta2: z.number().min(0).lt(1).default(0.95).describe('AdamW beta2.'),
  adam_eps: z.number().positive().default(1e-8).describe('AdamW epsilon.'),
  max_grad_norm: z.number().positive().default(1).describe('Global gradient-norm clipping threshold.'),
  heldout_fraction: z.number().min(0).lt(1).default(0.05).describe('Share of the documents held out for the held-out loss (split by a hash of the text).'),
  eval_every: z.number().int().min(1).default(250).describe('Held-out loss every this many steps (and after the last).'),
  eval_tokens: z.number().int().min(1).default(32768).describe('Held-out tokens evaluated each time (the first ones of the held-out stream).'),
  checkpoint_every: z.number().int().min(1).default(250).describe('Write a resumable checkpoint every this many steps (and after the last).'),
  threads: z.number().int().min(0).default(0).describe('Compute threads for the native kernels; 0 = the backend default.'),
});

export type PretrainConfig = z.output<typeof schema>;
export type PretrainKey = keyof PretrainConfig;
export const PRETRAIN_KEYS = Object.keys(schema.shape) as PretrainKey[];

export function pretrainFieldDocs(): Array<{ key: PretrainKey; flag: string; doc: string; default: unknown }> {
  const d = schema.parse({});
  return PRETRAIN_KEYS.map((key) => ({ key, flag: `--${key.replace(/_/g, '-')}`, doc: schema.shape[key].description ?? '', default: d[key] }));
}

export function parsePretrainConfig(input: unknown, source: string): PretrainConfig {
  const r = schema.safeParse(input);
  if (!r.success) {
    const problems = r.error.issues.map((i) => (i.code === 'unrecognized_keys'
      ? `unknown field(s) ${i.keys.join(', ')} (known fields: ${PRETRAIN_KEYS.join(', ')})`
      : `${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}`));
    throw new Error(`invalid pretraining config (${source}): ${problems.join('; ')}`);
  }
  if (r.data.warmup_steps > r.data.steps) throw new Error(`invalid pretraining config (${source}): warmup_steps ${r.data.warmup_steps} exceeds steps ${r.data.steps}`);
  return r.data;
}

/** A command-line string as the field's type (number, boolean, string), or an error naming the flag. */
export function parsePretrainFlag(key: PretrainKey, raw: string): unknown {
  const field = schema.shape[key];
  const t = raw.trim();
  for (const v of [t !== '' && Number.isFinite(Number(t)) ? Number(t) : undefined, raw]) {
    if (v === undefined) continue;
    const r = field.safeParse(v);
    if (r.success) return r.data;
  }
  const r = field.safeParse(Number.isFinite(Number(t)) ? Number(t) : raw);
  throw new Error(`--${key.replace(/_/g, '-')} ${JSON.stringify(raw)}: ${r.success ? 'invalid value' : r.error.issues[0]!.message}`);
}

/** Learning rate of step s (1-based): linear warm-up, then cosine to lr * min_lr_ratio. */
export function scheduledLr(c: Pick<PretrainConfig, 'learning_rate' | 'min_lr_ratio' | 'warmup_steps' | 'steps'>, step: number): number {
  if (!Number.isInteger(step) || step < 1 || step > c.steps) throw new Error(`scheduledLr: step must be an integer in 1..${c.steps}, got ${step}`);
  if (step <= c.warmup_steps) return c.learning_rate * step / c.warmup_steps;
  const span = c.steps - c.warmup_steps;
  const progress = span <= 1 ? 1 : (step - c.warmup_steps - 1) / (span - 1);
  const minLr = c.learning_rate * c.min_lr_ratio;
  return minLr + 0.5 * (c.learning_rate - minLr) * (1 + Math.cos(Math.PI * progress));
}
