// Models' own chat templates (src/model/chat-template.ts): SmolLM2, Qwen2.5-Instruct and Llama 3.2-Instruct
// rendered from their tokenizer_config.json (test/fixtures/chat-templates), the ChatML fallback, the stable
// prefix the cache uses, and the errors. Every expected string is written out by hand from the format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HfTokenizer, loadHfTokenizer } from '../src/model/tokenizer.js';
import { JinjaChatTemplate, renderChatML, renderChatPrompt, SMOLLM_DEFAULT_SYSTEM, type ChatMessage } from '../src/model/chat-template.js';
import { loadModel } from '../src/model/load.js';
import { toHfConfigJson } from '../src/model/parse-config.js';
import { TINY } from '../src/model/configs.js';
import { getBackend } from '../src/kernels/index.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { segmentEnds } from '../src/rl/prompt-segments.js';
import { ACTION_ANSWER_PREFIX, toChatMessages } from '../src/prompt/chat.js';
import { renderPrompt } from '../src/prompt/render.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { microTokenizerJson, tmpDir } from './model-load-fixtures.js';
import { modelsPath, needsModels, repoRoot } from './shared-paths.js';

const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'chat-templates');
function fixtureConfig(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.tokenizer_config.json`), 'utf8')) as Record<string, unknown>;
}

const LLAMA3_SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];

/** The micro byte-level tokenizer (specials <|endoftext|>, <|im_start|>, <|im_end|>) plus `extra` special tokens from id 260. */
function microWith(extra: readonly string[] = []): Record<string, unknown> {
  const json = microTokenizerJson();
  const vocab = (json.model as { vocab: Record<string, number> }).vocab;
  const added = json.added_tokens as Array<Record<string, unknown>>;
  extra.forEach((content, i) => {
    vocab[content] = 260 + i;
    added.push({ id: 260 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  });
  return json;
}

const SU: ChatMessage[] = [{ role: 'system', content: 'Trade well.' }, { role: 'user', content: 'MSFT 2024-01-02: up 1%.' }];

// ---------------------------------------------------------------------------------------------
// SmolLM2

const SMOL_SYSTEM_TURN = '<|im_start|>system\nTrade well.<|im_end|>\n';
const SMOL_EXPECTED = SMOL_SYSTEM_TURN + '<|im_start|>user\nMSFT 2024-01-02: up 1%.<|im_end|>\n<|im_start|>assistant\n';
const SMOL_DEFAULT = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'
  + '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';

test('SmolLM2-135M-Instruct: its own template renders ChatML, the same text as the built-in fallback', () => {
  const own = new HfTokenizer(microWith(), fixtureConfig('smollm2-135m-instruct'), 'smollm2');
  const fallback = new HfTokenizer(microWith(), {}, 'no-template');
  assert.equal(own.chatTemplateKind, 'model');
  assert.equal(fallback.chatTemplateKind, 'chatml');
  for (const tok of [own, fallback]) {
    assert.equal(tok.applyChatTemplate(SU), SMOL_EXPECTED);
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), SMOL_DEFAULT);
    assert.equal(tok.applyChatTemplate(SU, false), SMOL_EXPECTED.slice(0, -'<|im_start|>assistant\n'.length));
    const p = renderChatPrompt(tok, SU);
    assert.deepEqual(p, { text: SMOL_EXPECTED, prefixEnd: SMOL_SYSTEM_TURN.length, prefixProblem: null });
  }
  assert.equal(own.eosId, 2, 'eos_token <|im_end|>');
});

test('SmolLM2-135M-Instruct: its tokenizer.json with its tokenizer_config.json encodes the template\'s markers as single ids', { skip: needsModels('smollm2-135m-instruct', 'tokenizer.json') }, () => {
  const json = JSON.parse(readFileSync(modelsPath('smollm2-135m-instruct', 'tokenizer.json'), 'utf8')) as unknown;
  const tok = new HfTokenizer(json, fixtureConfig('smollm2-135m-instruct'), 'smollm2');
  const text = tok.applyChatTemplate(SU) + ACTION_ANSWER_PREFIX;
  assert.equal(text, `${SMOL_EXPECTED}{"action": "`);
  const ids = tok.encode(text);
  assert.deepEqual([ids.filter((i) => i === 1).length, ids.filter((i) => i === 2).length], [3, 2], 'three <|im_start|>, two <|im_end|>');
  // Special tokens that the model knows (here <filename>) are refused inside a message too.
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'see <filename>' }]), /chat message 0 \(user\): content contains the special token <filename>/);
});

// ---------------------------------------------------------------------------------------------
// Qwen2.5-Instruct

const QWEN_SYSTEM_TURN = '<|im_start|>system\nTrade well.<|im_end|>\n';
const QWEN_EXPECTED = QWEN_SYSTEM_TURN + '<|im_start|>user\nMSFT 2024-01-02: up 1%.<|im_end|>\n<|im_start|>assistant\n';
const QWEN_DEFAULT = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'
  + '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';

test('Qwen2.5-Instruct: its template, its default system message, and the answer prefix after its generation prompt', () => {
  const tok = new HfTokenizer(microWith(), fixtureConfig('qwen2.5-instruct'), 'qwen');
  assert.equal(tok.chatTemplateKind, 'model');
  assert.equal(tok.eosId, 2, 'eos_token <|im_end|>');
  assert.equal(tok.applyChatTemplate(SU), QWEN_EXPECTED);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), QWEN_DEFAULT, 'Qwen\'s own default system text, not SmolLM\'s');
  assert.equal(tok.applyChatTemplate(SU, false), QWEN_SYSTEM_TURN + '<|im_start|>user\nMSFT 2024-01-02: up 1%.<|im_end|>\n');
  const p = renderChatPrompt(tok, SU);
  assert.deepEqual(p, { text: QWEN_EXPECTED, prefixEnd: QWEN_SYSTEM_TURN.length, prefixProblem: null });
  assert.ok((p.text + ACTION_ANSWER_PREFIX).endsWith('<|im_start|>assistant\n{"action": "'));
});

// ---------------------------------------------------------------------------------------------
// Llama 3.2-Instruct

const LLAMA_SYSTEM_TURN = '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n'
  + 'Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nTrade well.<|eot_id|>';
const LLAMA_EXPECTED = LLAMA_SYSTEM_TURN
  + '<|start_header_id|>user<|end_header_id|>\n\nMSFT 2024-01-02: up 1%.<|eot_id|>'
  + '<|start_header_id|>assistant<|end_header_id|>\n\n';

test('Llama 3.2-Instruct: bos_token, header turns, the fixed knowledge and "today" dates, the answer prefix after the assistant header', () => {
  const tok = new HfTokenizer(microWith(LLAMA3_SPECIALS), fixtureConfig('llama-3.2-instruct'), 'llama');
  assert.equal(tok.chatTemplateKind, 'model');
  assert.equal(tok.eosId, 264, 'eos_token <|eot_id|>');
  assert.equal(tok.applyChatTemplate(SU), LLAMA_EXPECTED);
  // Without a system message the system header and the date lines are still there, with an empty text.
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>'
    + '<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  // Its template trims message contents.
  assert.equal(tok.applyChatTemplate([{ role: 'system', content: ' Trade well.\n' }, { role: 'user', content: '\nMSFT 2024-01-02: up 1%.  ' }]), LLAMA_EXPECTED);
  const p = renderChatPrompt(tok, SU);
  assert.deepEqual(p, { text: LLAMA_EXPECTED, prefixEnd: LLAMA_SYSTEM_TURN.length, prefixProblem: null });
  const ids = tok.encode(p.text + ACTION_ANSWER_PREFIX);
  assert.equal(ids[0], 260, '<|begin_of_text|> is one token');
  assert.equal(ids.filter((i) => i === 264).length, 2, 'two <|eot_id|>');
  assert.ok((p.text + ACTION_ANSWER_PREFIX).endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n{"action": "'));
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x<|eot_id|>' }]), /chat message 0 \(user\): content contains the special token <\|eot_id\|>/);
});

// ---------------------------------------------------------------------------------------------
// Where a template does not allow a shared prefix, or refuses a system message

test('renderChatPrompt: no shared prefix, with the reason, when the system turn cannot be split off', () => {
  const json = microWith();
  const mk = (chat_template: string) => new HfTokenizer(json, { chat_template }, 't');
  // The system text goes after the conversation: rendering it alone gives a text that does not start the prompt.
  const after = mk("{% for m in messages %}{% if m.role != 'system' %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}"
    + "{% for m in messages %}{% if m.role == 'system' %}[note]{{ m.content }}{% endif %}{% endfor %}");
  const a = renderChatPrompt(after, SU);
  assert.equal(a.text, '[user]MSFT 2024-01-02: up 1%.[note]Trade well.');
  assert.equal(a.prefixEnd, 0);
  assert.match(a.prefixProblem ?? '', /rendering of the system message alone is not the start of the full prompt/);
  // The system text is folded into the first user turn: alone, it renders nothing.
  const folded = mk("{% set ns = namespace(sys='') %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.sys = m.content + ' ' %}"
    + "{% else %}<{{ m.role }}>{{ ns.sys }}{{ m.content }}</{{ m.role }}>{% set ns.sys = '' %}{% endif %}{% endfor %}");
  const f = renderChatPrompt(folded, SU);
  assert.equal(f.text, '<user>Trade well. MSFT 2024-01-02: up 1%.</user>');
  assert.equal(f.prefixEnd, 0);
  assert.match(f.prefixProblem ?? '', /renders nothing for the system message alone/);
  // A template that wants the conversation to end with a user turn cannot render the system message alone.
  const lastUser = mk("{% if messages[-1]['role'] != 'user' %}{{ raise_exception('the last message must be the user\\'s') }}{% endif %}"
    + '{% for m in messages %}({{ m.role }}: {{ m.content }}){% endfor %}');
  const l = renderChatPrompt(lastUser, SU);
  assert.equal(l.text, '(system: Trade well.)(user: MSFT 2024-01-02: up 1%.)');
  assert.equal(l.prefixEnd, 0);
  assert.match(l.prefixProblem ?? '', /cannot render the system message alone \(.*the last message must be the user's\)/);
  // Without a system message there is nothing to share, and nothing to report.
  assert.deepEqual(renderChatPrompt(after, SU.slice(1)), { text: '[user]MSFT 2024-01-02: up 1%.', prefixEnd: 0, prefixProblem: null });
});

test('a template that refuses a system role: an error naming the model and what to do', () => {
  const noSystem = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    + "{% for m in messages %}<turn>{{ m.role }}\n{{ m.content }}</turn>\n{% endfor %}{% if add_generation_prompt %}<turn>model\n{% endif %}";
  const tok = new HfTokenizer(microWith(), { chat_template: noSystem }, 'models/gemma-like/tokenizer.json');
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), '<turn>user\nhi</turn>\n<turn>model\n');
  assert.throws(() => tok.applyChatTemplate(SU), (e: Error) => {
    assert.match(e.message, /^models\/gemma-like\/tokenizer\.json: the model's chat template refuses a system message \(it raised: System role not supported\)/);
    assert.match(e.message, /choose an instruct model whose template accepts a system role, or give the model a tokenizer_config\.json whose chat_template does/);
    return true;
  });
  // Other failures say what the template raised.
  const broken = new HfTokenizer(microWith(), { chat_template: "{{ raise_exception('no ' + messages[0].role) }}" }, 'b');
  assert.throws(() => broken.applyChatTemplate([{ role: 'user', content: 'x' }]), /^Error: b: the model's chat template cannot render these messages \(roles user\): no user$/);
  assert.throws(() => new HfTokenizer(microWith(), { chat_template: '{% for m in messages %}' }, 'p'), /^Error: p: the chat_template of tokenizer_config\.json cannot be parsed/);
});

test('a template never reads the clock: strftime_now is undefined, so the template\'s own fallback date is used', () => {
  const t = new JinjaChatTemplate('{% if strftime_now is defined %}{{ strftime_now("%Y") }}{% else %}no clock{% endif %}|{{ range(3) | join(",") }}|{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}',
    { bos_token: '<s>', eos_token: { content: '</s>', lstrip: false }, pad_token: null }, [], 'clock');
  assert.equal(t.render([], true), 'no clock|0,1,2|<s>|</s>|false');
});

test('chat_template as a list of named templates: the "default" one; chat_template.jinja replaces tokenizer_config\'s', async () => {
  const json = microWith();
  const list = new HfTokenizer(json, { chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: '{{ messages[0].content }}!' }] }, 'list');
  assert.equal(list.applyChatTemplate([{ role: 'user', content: 'x' }]), 'x!');
  assert.throws(() => new HfTokenizer(json, { chat_template: [{ name: 'rag', template: 'R' }] }, 'nodefault'),
    /nodefault: chat_template is a list of named templates \("rag"\) without one named "default"/);
  assert.equal(new HfTokenizer(json, { chat_template: '' }, 'empty').chatTemplateKind, 'chatml', 'an empty template is none');

  const dir = tmpDir('flag-chat-');
  try {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(fixtureConfig('smollm2-135m-instruct')));
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}');
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfigJson({ ...TINY, vocab_size: 260 })));
    const tok = loadHfTokenizer(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'), join(dir, 'chat_template.jinja'));
    const listed = '[system] Trade well.\n[user] MSFT 2024-01-02: up 1%.\n';
    assert.equal(tok.applyChatTemplate(SU), listed);
    const m = await loadModel(`random:${join(dir, 'config.json')}`);
    assert.equal(m.tokenizer.applyChatTemplate(SU), listed, 'the loader reads chat_template.jinja');
    rmSync(join(dir, 'chat_template.jinja'));
    const without = await loadModel(`random:${join(dir, 'config.json')}`);
    assert.equal(without.tokenizer.applyChatTemplate(SU), SMOL_EXPECTED);
    assert.notEqual(without.fingerprint, m.fingerprint, 'the chat template file is part of the model\'s fingerprint');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The policy with a Llama 3.2 template: prompt text, cached system turn, and the no-prefix fallback

async function llamaPolicy(chatTemplate?: string): Promise<LlmPolicy> {
  const dir = tmpDir('flag-llama3-');
  try {
    const cfg = fixtureConfig('llama-3.2-instruct');
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(microWith(LLAMA3_SPECIALS)));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(chatTemplate === undefined ? cfg : { ...cfg, chat_template: chatTemplate }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfigJson({ ...TINY, vocab_size: 272 })));
    const model = await loadModel(`random:${join(dir, 'config.json')}`, { seed: 3 });
    return new LlmPolicy({ model, backend: getBackend('typescript'), trainableLayers: 2, head: 'lm', headInput: 'last', seed: 1, prompt: { mode: 'benchmark', style: 'compact' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('LLM policy with a Llama 3.2 template: the prompt is the template\'s, and the cached prefix is its system turn', async () => {
  const env = new TradingEnv(syntheticMarket({ seed: 2, days: 60 }), { lookback: 20, start: 'fixed' });
  const o1 = env.reset();
  const o2 = env.step('buy').observation;
  const p = await llamaPolicy();
  const { messages, text, marks } = p.promptText(o1);
  const system = messages[0]!.content;
  const headText = `<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n${system}<|eot_id|>`;
  assert.ok(text.startsWith(`${headText}<|start_header_id|>user<|end_header_id|>\n\n`), text.slice(0, 200));
  assert.ok(text.endsWith('<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{"action": "'), text.slice(-80));
  assert.equal(marks[0], headText.length, 'the first mark is the end of the template\'s system turn');
  p.encode(o1);
  assert.equal(p.lastPrefixLen, p.tokenizer.encode(headText).length);
  const x2 = p.encode(o2);
  assert.equal(p.cacheStats().frozenReused, p.lastPrefixLen, 'the second prompt reused exactly the system turn');
  assert.equal(p.cacheStats().prefixProblem, null);
  assert.ok(segmentEnds(x2.segments).length >= 1);
});

test('LLM policy with a template that places the system text after the conversation: no prefix cached, the reason recorded', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => { if (w.code === 'FLAG_TRADER_NO_PROMPT_PREFIX') warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    const p = await llamaPolicy("{% for m in messages %}{% if m.role != 'system' %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endif %}{% endfor %}"
      + "{% for m in messages %}{% if m.role == 'system' %}<|start_header_id|>system<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endif %}{% endfor %}"
      + "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}");
    const env = new TradingEnv(syntheticMarket({ seed: 2, days: 60 }), { lookback: 20, start: 'fixed' });
    const o1 = env.reset();
    const o2 = env.step('buy').observation;
    const { text, marks } = p.promptText(o1);
    assert.ok(text.startsWith('<|start_header_id|>user<|end_header_id|>\n\n'));
    assert.deepEqual(marks, [], 'no marks: the market section is not a prefix to share either');
    assert.match(p.prefixProblem ?? '', /not the start of the full prompt/);
    const x1 = p.encode(o1);
    p.encode(o2);
    assert.deepEqual(segmentEnds(x1.segments), []);
    assert.equal(p.cacheStats().frozenReused, 0, 'nothing came from a cache');
    await new Promise((r) => setImmediate(r));
    assert.equal(warnings.length, 1, 'warned once');
    assert.match(warnings[0]!, /: the chat template's rendering of the system message alone is not the start of the full prompt/);
  } finally {
    process.off('warning', onWarning);
  }
});

test('the project\'s own model (flag-news-small, a SmolLM2-style template): prompts are the ChatML text they always were', () => {
  const dir = join(repoRoot(), 'models', 'flag-news-small');
  const tok = loadHfTokenizer(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  assert.equal(tok.chatTemplateKind, 'model');
  const env = new TradingEnv(syntheticMarket({ seed: 4, days: 40 }), { lookback: 20, start: 'fixed' });
  let obs = env.reset();
  for (let day = 0; day < 5; day++) {
    const messages = toChatMessages(renderPrompt(obs, { mode: 'benchmark' }));
    const p = renderChatPrompt(tok, messages);
    assert.equal(p.text, renderChatML(messages, true, SMOLLM_DEFAULT_SYSTEM));
    assert.equal(p.prefixEnd, `<|im_start|>system\n${messages[0]!.content}<|im_end|>\n`.length);
    obs = env.step('hold').observation;
  }
});
