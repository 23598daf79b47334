/**
 * Agents by name, for the CLI and the evaluation code. A map of factories: adding a trader (an API
 * LLM, a trained policy) is one `registerAgent` call or one entry below.
 */
import type { Agent } from './agent.js';
import { BuyAndHoldAgent, MomentumAgent, RandomAgent, SentimentAgent, SmaCrossoverAgent } from './baselines.js';
import { apiAgentOptionsFromFlags, createApiAgentFromOptions } from './api-options.js';

/** Options every factory receives; each factory reads the ones it needs. */
export interface AgentOptions {
  /** Seed for agents with randomness (default 0). */
  seed?: number;
  /** Momentum lookback in days (default 20). */
  momentumLookback?: number;
  /** SMA crossover windows (default 5 and 20). */
  smaShort?: number;
  smaLong?: number;
  /** Sentiment agent: negative news gives hold instead of sell (default false). */
  sentimentLongOnly?: boolean;
  /** Further options for agents added later (API endpoints, checkpoint paths, ...). */
  [option: string]: unknown;
}

export type AgentFactory = (options: AgentOptions) => Agent;

/** The options object is loosely typed (flags pass through), so check the value rather than trust it. */
function longOnlyOption(v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new Error(`agent option sentimentLongOnly must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

interface Entry { description: string; create: AgentFactory }

const factories = new Map<string, Entry>([
  ['buy-and-hold', { description: 'long every day', create: () => new BuyAndHoldAgent() }],
  ['random', { description: 'uniform over buy/sell/hold (seeded)', create: (o) => new RandomAgent(o.seed ?? 0) }],
  ['momentum', { description: 'sign of the return over a lookback (default 20 days)', create: (o) => new MomentumAgent(o.momentumLookback ?? 20) }],
  ['sma-crossover', { description: 'short SMA vs long SMA (default 5 / 20)', create: (o) => new SmaCrossoverAgent(o.smaShort ?? 5, o.smaLong ?? 20) }],
  ['sentiment', { description: 'net sentiment tags of the day\'s news and filings: positive -> buy, negative -> sell (hold if long-only)', create: (o) => new SentimentAgent(longOnlyOption(o.sentimentLongOnly)) }],
  // Zero-shot LLM over an OpenAI-compatible endpoint; reads the --base-url/--api-* flags (src/agents/api-options.ts).
  ['openai', { description: 'zero-shot LLM over an OpenAI-compatible API (--base-url, --api-model)', create: (o) => createApiAgentFromOptions(apiAgentOptionsFromFlags(o)) }],
]);

/** Add (or replace) an agent name. */
export function registerAgent(name: string, description: string, create: AgentFactory): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`agent name ${JSON.stringify(name)} must be lower-case letters, digits and dashes`);
  factories.set(name, { description, create });
}

/** The known agent names, in registration order. */
export function agentNames(): string[] {
  return [...factories.keys()];
}

/** Name -> one-line description, for help texts. */
export function agentDescriptions(): Array<{ name: string; description: string }> {
  return [...factories].map(([name, e]) => ({ name, description: e.description }));
}

export function createAgent(name: string, options: AgentOptions = {}): Agent {
  const entry = factories.get(name);
  if (!entry) throw new Error(`unknown agent ${JSON.stringify(name)}; known agents: ${agentNames().join(', ')}`);
  return entry.create(options);
}
