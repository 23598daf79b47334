/**
 * The decoder's policy head (src/model/heads.ts) bound to the trading actions: ACTIONS (buy, sell,
 * hold), each read as the first token of its word after the answer prefix `{"action": "`
 * (src/prompt/chat.ts).
 */
import type { Backend } from '../kernels/backend.js';
import { ACTIONS } from '../env/types.js';
import { ACTION_ANSWER_PREFIX } from '../prompt/chat.js';
import { PolicyHead, firstTokenIds, type Encoder, type PolicyHeadInit } from '../model/heads.js';

/**
 * The first token id of each action word as it tokenizes right after `prefix` (default: the answer
 * prefix; words default to ACTIONS). See firstTokenIds for the checks.
 */
export function actionTokenIds(tok: Encoder, prefix: string = ACTION_ANSWER_PREFIX, words: readonly string[] = ACTIONS): number[] {
  return firstTokenIds(tok, prefix, words);
}

/** A policy head over ACTIONS, in ACTIONS order. */
export class ActionPolicyHead extends PolicyHead {
  constructor(be: Backend, init: Omit<PolicyHeadInit, 'actions'>) {
    super(be, { ...init, actions: ACTIONS });
  }
}
