// Small checkpoints and a small tokenizer.json that the model-load and model-hub tests write themselves.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaConfig } from '../src/model/config.js';

export function tmpDir(prefix = 'flag-model-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A few-hundred-parameter Llama config: 2 layers, 2 query heads sharing 1 KV head. */
export function microConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
    vocab_size: 264, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 128, tie_word_embeddings: true,
    head_dim: 4, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, initializer_range: 0.02, ...over,
  };
}

/** GPT-2's reversible byte -> printable character map, used by byte-level BPE vocabularies. */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let i = 33; i <= 126; i++) keep.push(i);
  for (let i = 161; i <= 172; i++) keep.push(i);
  for (let i = 174; i <= 255; i++) keep.push(i);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

export const MICRO_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/**
 * A byte-level BPE tokenizer.json: 3 specials, 256 byte tokens (id 3 + byte) and one merge "a"+"b" ->
 * "ab" (id 259). Vocabulary 260.
 */
export function microTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  MICRO_SPECIALS.forEach((s, i) => { vocab[s] = i; });
  bytesToUnicode().forEach((ch, b) => { vocab[ch] = 3 + b; });
  vocab.ab = 259;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: MICRO_SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [['a', 'b']] },
  };
}

export function writeMicroTokenizer(dir: string): string {
  const p = join(dir, 'tokenizer.json');
  writeFileSync(p, JSON.stringify(microTokenizerJson()));
  return p;
}
