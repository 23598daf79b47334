/**
 * Evaluate a training run: rebuild its policy from config.json, load the trained parameters
 * (policy.safetensors, or the latest checkpoint of an unfinished run), and backtest it over the test
 * window with the backtest engine, next to rule baselines on the same window.
 *
 * The market settings (mode, lookback, costs) are the run's, so the policy sees observations shaped
 * as in training. The data and test window default to the run's and can be overridden.
 *
 * Integrity: config.json and the weights file are checked against the run's manifest.json (a file
 * changed after the run wrote it is an error naming it); a run from before manifests is evaluated
 * with a warning. The weights must be finite (checked as they are read).
 *
 * Point-in-time: a window starting on or before the text cutoff of the run's model is refused (before
 * the model is loaded) unless allowed, by the option or by the run's own allow_text_overlap.
 */
import { join } from 'node:path';
import type { Agent } from '../agents/agent.js';
import { createAgent } from '../agents/registry.js';
import { backtest, type BacktestResult } from './backtest.js';
import type { Annualization } from './metrics.js';
import { loadParamsInto, readPolicyTensors } from '../rl/checkpoint.js';
import type { TrainConfig } from '../rl/config.js';
import { loadRunSeries, testWindow } from '../rl/data.js';
import { createPolicy } from '../rl/policies.js';
import { checkTextCutoff, dateCheckApplies, describePointInTime, policyReadsModel } from '../rl/point-in-time.js';
import { loadModelMeta } from '../model/load.js';
import { PolicyAgent } from '../agents/policy-agent.js';
import { savedTensors, type ActorCritic } from '../rl/policy.js';
import { LlmPolicy } from '../rl/llm-policy.js';
import { readLoraAdapter } from '../model/lora.js';
import { checkRunFile, readRunRecord, RUN_FILES } from '../rl/run.js';
import { readManifest } from '../rl/manifest.js';

export type DataOverrides = Partial<Pick<TrainConfig, 'data' | 'format' | 'ticker' | 'price_column' | 'test_start' | 'test_end'>>;

export interface EvaluateOptions {
  run: string;
  overrides?: DataOverrides;
  /** Sample actions (one backtest per seed) instead of the greedy policy. */
  sampled?: boolean;
  /** Seeds of the sampled backtests (default [0]). */
  seeds?: number[];
  /** Rule baselines to run beside the policy (registry names). */
  baselines?: string[];
  /**
   * Options of the baselines that take some (the API agent's parsed flags: base URL, model, prompt
   * budget...); the run's mode and allow_short are added, so an API agent words its prompt as the run's.
   */
  agentOptions?: Record<string, unknown>;
  annualization?: Annualization;
  /** `trained` (default) or `initial`: the untrained policy of the same seed, for comparison. */
  weights?: 'trained' | 'initial';
  /** Evaluate even when the window starts on or before the model's text cutoff (default: the run's allow_text_overlap). */
  allowTextOverlap?: boolean;
  /**
   * A PEFT LoRA adapter folder whose A and B replace the run's trained adapters (a run trained with
   * adapter lora; the heads stay the run's). The adapter's r, alpha, modules and layers must be the run's.
   */
  adapter?: string;
  /** Warnings (an allowed text overlap), one line each. */
  log?: (message: string) => void;
}

export const DEFAULT_BASELINES = ['buy-and-hold', 'momentum', 'sma-crossover'];

/**
 * Which file holds the run's trained parameters, checked against the run's manifest (when it has one):
 * a file whose checksum does not match, or a listed file that is missing, is an error naming it.
 */
export function trainedWeightsPath(run: string): string {
  const manifest = readManifest(run);
  if (checkRunFile(run, RUN_FILES.policy, manifest)) return join(run, RUN_FILES.policy);
  if (checkRunFile(run, RUN_FILES.checkpoint, manifest)) return join(run, RUN_FILES.checkpoint);
  throw new Error(`${run} holds no trained weights yet (neither ${RUN_FILES.policy} nor ${RUN_FILES.checkpoint})`);
}

/** Put the adapters of a PEFT folder into a run's LoRA policy (evaluate --adapter, serve --run --adapter). */
export function loadRunAdapter(policy: ActorCritic, dir: string, run: string): void {
  if (!(policy instanceof LlmPolicy)) throw new Error(`--adapter: ${run} trained a ${policy.kind} policy; an adapter applies only to an LLM policy trained with adapter lora`);
  policy.loadAdapter(readLoraAdapter(dir, policy.model.config));
}

export async function evaluateRun(opts: EvaluateOptions): Promise<BacktestResult[]> {
  const record = readRunRecord(opts.run, opts.log);
  const runConfig = record.config;
  const c: TrainConfig = { ...runConfig, ...opts.overrides };
  const { series } = await loadRunSeries(c);
  const window = testWindow(series, c);
  if (policyReadsModel(runConfig.policy) && dateCheckApplies(c)) {
    // The cutoff the run recorded; runs from before the check have none recorded: read the model's file.
    const cutoff = record.point_in_time !== undefined && record.point_in_time !== null
      ? record.point_in_time.text_cutoff
      : (await loadModelMeta(runConfig.model))?.text_cutoff ?? null;
    const allowOverlap = opts.allowTextOverlap ?? runConfig.allow_text_overlap;
    const { overlap } = checkTextCutoff({ cutoff, testStart: window.start, model: runConfig.model, allowOverlap });
    if (overlap) opts.log?.('warning: ' + describePointInTime({ model: runConfig.model, text_cutoff: cutoff, test_start: window.start, text_overlap: true }));
  }
  const policy = await createPolicy(runConfig);
  if (policy.fingerprint !== record.hashes.model) {
    throw new Error(`${opts.run}: the policy built from its config has fingerprint ${policy.fingerprint}, but the run recorded ${record.hashes.model}`);
  }
  const weights = opts.weights ?? 'trained';
  if (weights === 'trained') {
    const path = trainedWeightsPath(opts.run);
    loadParamsInto(savedTensors(policy), readPolicyTensors(path).params, path);
  }
  if (opts.adapter !== undefined) loadRunAdapter(policy, opts.adapter, opts.run);

  const common = {
    start: window.start, end: window.end, mode: c.mode, costBps: c.cost_bps, lookback: c.lookback,
    feeBps: c.fee_bps, allowShort: c.allow_short,
    ...(opts.annualization ? { annualization: opts.annualization } : {}),
  };
  const base = `ppo-${policy.kind}${weights === 'initial' ? '-untrained' : ''}${opts.adapter !== undefined ? '+adapter' : ''}`;
  const results: BacktestResult[] = [];
  if (opts.sampled) {
    for (const seed of opts.seeds ?? [0]) {
      const agent = new PolicyAgent(policy, { sampled: true, seed, name: `${base}-sampled(seed=${seed})` });
      results.push(await backtest(series, agent, { ...common, seed }));
    }
  } else {
    results.push(await backtest(series, new PolicyAgent(policy, { name: base }), common));
  }
  for (const name of opts.baselines ?? DEFAULT_BASELINES) {
    const agent: Agent = createAgent(name, { seed: 0, ...opts.agentOptions, mode: c.mode, allowShort: c.allow_short });
    results.push(await backtest(series, agent, common));
  }
  return results;
}
