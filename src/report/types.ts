/**
 * What a report shows: for each asset and test window, every agent's daily positions and returns
 * (one run per seed for stochastic or trained agents), plus the training curves of trained runs.
 * Metrics are recomputed from `returns` by the report, so a report can never disagree with its data.
 */
export interface AgentRun {
  /** Seed of the run, or null for deterministic agents (Buy & Hold, rules). */
  seed: number | null;
  /** Position held from day i to day i+1 (length N-1). */
  positions: number[];
  /** Daily log returns after costs (length N-1). */
  returns: number[];
}

export interface AgentResult {
  name: string;
  /** 'trained' rows get mean +- std over seeds and a bootstrap CI against Buy & Hold. */
  kind: 'trained' | 'baseline' | 'zero-shot';
  runs: AgentRun[];
}

export interface AssetResult {
  asset: string;
  /** N dates of the test window (prices at each). */
  dates: string[];
  prices: number[];
  annualization: { vol: number; sr: number };
  trainWindow?: { start: string; end: string };
  agents: AgentResult[];
}

/** One line of a run's metrics.jsonl (per PPO update). */
export type TrainingPoint = Record<string, number | string | null>;

export interface TrainingCurve {
  asset: string;
  seed: number;
  points: TrainingPoint[];
}

/** One walk-forward window: its bounds and every agent's runs on its test window. */
export interface WalkForwardWindowResult {
  /** 0-based position in the walk (shown 1-based). */
  index: number;
  train: { start: string; end: string };
  test: { start: string; end: string };
  /** N dates of the test window. */
  dates: string[];
  /** As in AssetResult: positions and returns of each run over the N - 1 test days. */
  agents: AgentResult[];
}

/** A walk-forward over one asset (reproduce --walk-forward): windows in order, the same agents in each. */
export interface WalkForwardResult {
  asset: string;
  /** TRAIN:TEST:STEP in trading days, and whether training windows expand. */
  scheme: { train: number; test: number; step: number; expanding: boolean };
  annualization: { vol: number; sr: number };
  windows: WalkForwardWindowResult[];
}

export interface ReportInput {
  title: string;
  /** Free-form lines shown under the title (protocol, config, code version). */
  notes: string[];
  /** Lines shown prominently under the title: results that may not be what they seem (e.g. an allowed text overlap). */
  warnings?: string[];
  assets: AssetResult[];
  /** Walk-forward sections (per-window table and chart, aggregates over windows). */
  walkForward?: WalkForwardResult[];
  training: TrainingCurve[];
  /** Seed of the bootstrap resampling. */
  bootstrapSeed?: number;
  /** Number of bootstrap resamples (default 2000). */
  bootstrapResamples?: number;
}
