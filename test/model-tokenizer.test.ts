import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ByteTokenizer, HfTokenizer, loadHfTokenizer, BYTE_VOCAB_SIZE, SMOLLM_DEFAULT_SYSTEM } from '../src/model/tokenizer.js';
import { needsModels, modelsPath } from './shared-paths.js';
import { microTokenizerJson, tmpDir } from './model-load-fixtures.js';

const SMOL_TOKENIZER = ['smollm2-135m-instruct', 'tokenizer.json'];
const VARIED = 'Price: $123.45 (+6.7%) on 2024-01-02.\n\tNews:  "Über-Rally" — 日本株 📈🚀 naïve café\r\n  trailing spaces  ';

// Written out by hand from the shared README's template description.
const EXPECTED_CHAT = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'
  + '<|im_start|>user\nBuy or sell?<|im_end|>\n<|im_start|>assistant\n';

// ---------------------------------------------------------------------------------------------
// SmolLM2's tokenizer.json

test('SmolLM2 tokenizer: special tokens, digits one at a time, ids justified from the vocab', { skip: needsModels(...SMOL_TOKENIZER) }, () => {
  const path = modelsPath(...SMOL_TOKENIZER);
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const vocab: Record<string, number> = json.model.vocab;
  const tok = loadHfTokenizer(path);
  assert.equal(tok.kind, 'hf');
  assert.equal(tok.vocabSize, 49152);
  assert.equal(tok.eosId, 2, 'without tokenizer_config.json, EOS is <|im_end|>');
  assert.deepEqual(tok.encode('<|im_start|>'), [1]);
  assert.deepEqual(tok.encode('<|im_end|>'), [2]);
  assert.deepEqual(tok.encode('<|endoftext|>'), [0]);
  assert.equal(tok.tokenId('<|im_end|>'), 2);
  // Digits: one token per digit, each the vocab's id of that digit.
  assert.deepEqual(tok.encode('90210'), [...'90210'].map((d) => vocab[d]));
  // Byte-level BPE marks a leading space as "Ġ" and a newline as "Ċ".
  for (const w of ['Hello', 'Ġworld', 'Ċ', 'Ġbuy', 'Ġsell', 'Ġhold']) assert.equal(typeof vocab[w], 'number', w);
  assert.deepEqual(tok.encode('Hello world\n'), [vocab.Hello, vocab['Ġworld'], vocab['Ċ']]);
  assert.deepEqual(tok.encode(' buy sell hold'), [vocab['Ġbuy'], vocab['Ġsell'], vocab['Ġhold']]);
  assert.equal(tok.tokenId('Ġworld'), vocab['Ġworld']);
  assert.equal(tok.tokenId('no-such-token-string'), undefined);
  // Specials in running text are single ids too, and no BOS is added.
  assert.deepEqual(tok.encode('a<|im_end|>b'), [vocab.a, 2, vocab.b]);
});

test('SmolLM2 tokenizer: decode(encode(x)) == x on varied unicode text', { skip: needsModels(...SMOL_TOKENIZER) }, () => {
  const tok = loadHfTokenizer(modelsPath(...SMOL_TOKENIZER));
  for (const text of [VARIED, '', ' ', '  leading', '<|im_start|>user\nx<|im_end|>\n', '0.000001 1e-9 -42']) {
    assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  }
  assert.throws(() => tok.decode([5, 49152]), /token id 49152 at position 1 is outside the vocabulary 0\.\.49151/);
});

test('SmolLM2 tokenizer: ChatML template, default system, encoded specials', { skip: needsModels(...SMOL_TOKENIZER) }, () => {
  const tok = loadHfTokenizer(modelsPath(...SMOL_TOKENIZER));
  const text = tok.applyChatTemplate([{ role: 'user', content: 'Buy or sell?' }]);
  assert.equal(text, EXPECTED_CHAT);
  const ids = tok.encode(text);
  assert.equal(ids.filter((i) => i === 1).length, 3, 'three <|im_start|>');
  assert.equal(ids.filter((i) => i === 2).length, 2, 'two <|im_end|>');
  assert.equal(ids[0], 1);
  assert.deepEqual(ids.slice(-4), [1, ...tok.encode('assistant\n')]);
  // With a system message of its own, no default system text; without the generation prompt, none.
  const own = tok.applyChatTemplate([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }], false);
  assert.equal(own, '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n');
  assert.equal(tok.applyChatTemplate([]), '<|im_start|>assistant\n');
});

// ---------------------------------------------------------------------------------------------
// tokenizer.json / tokenizer_config.json handling (on a small tokenizer the test writes)

test('hf tokenizer: tokenizer_config eos_token, templates of its own and bad files', () => {
  const dir = tmpDir('flag-tok-');
  try {
    const json = microTokenizerJson();
    const tok = new HfTokenizer(json, {}, 'micro');
    assert.equal(tok.vocabSize, 260);
    assert.equal(tok.eosId, 2);
    assert.deepEqual(tok.encode('abc'), [259, 3 + 0x63], 'the one merge a+b applies');
    assert.equal(tok.decode(tok.encode(VARIED)), VARIED);
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'Buy or sell?' }]), EXPECTED_CHAT);

    assert.equal(new HfTokenizer(json, { eos_token: '<|endoftext|>' }, 'm').eosId, 0);
    assert.equal(new HfTokenizer(json, { eos_token: { content: '<|endoftext|>' } }, 'm').eosId, 0);
    assert.throws(() => new HfTokenizer(json, { eos_token: '</s>' }, 'cfg'), /cfg: eos_token "<\/s>" of tokenizer_config\.json is not in the vocabulary/);
    // A template of the model's own is rendered (Jinja), whatever its format (test/model-tokenizer-chat-templates.test.ts).
    const llama2 = new HfTokenizer(json, { chat_template: '{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}' }, 'l2');
    assert.equal(llama2.applyChatTemplate([{ role: 'user', content: 'x' }]), '[INST] x [/INST]');

    // Without <|im_start|> as an added token, the markers are not single tokens: ChatML is refused.
    const noSpecial = microTokenizerJson();
    noSpecial.added_tokens = [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
    const vocab = (noSpecial.model as { vocab: Record<string, number> }).vocab;
    delete vocab['<|im_start|>'];
    delete vocab['<|im_end|>'];
    const plain = new HfTokenizer(noSpecial, {}, 'plain');
    assert.equal(plain.eosId, 0);
    assert.throws(() => plain.applyChatTemplate([{ role: 'user', content: 'x' }]), /plain: <\|im_start\|> is not a single special token here/);

    assert.throws(() => new HfTokenizer({ version: '1.0' }, {}, 'nomodel.json'), /nomodel\.json: not a Hugging Face tokenizer\.json/);
    const bad = join(dir, 'tokenizer.json');
    writeFileSync(bad, '{"model": ');
    assert.throws(() => loadHfTokenizer(bad), /tokenizer\.json: the tokenizer\.json is not valid JSON/);
    assert.throws(() => loadHfTokenizer(join(dir, 'absent.json')), /absent\.json: cannot read the tokenizer\.json/);
    writeFileSync(bad, JSON.stringify(json));
    const cfgPath = join(dir, 'tokenizer_config.json');
    writeFileSync(cfgPath, '[');
    assert.throws(() => loadHfTokenizer(bad, cfgPath), /tokenizer_config\.json: the tokenizer_config\.json is not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chat template refuses content with special markers and malformed roles', () => {
  const tok = new ByteTokenizer();
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'hi<|im_end|>' }]), /chat message 0 \(user\): content contains the special token <\|im_end\|>/);
  assert.throws(() => tok.applyChatTemplate([{ role: 'system', content: 's' }, { role: 'us er', content: 'x' }]), /chat message 1: role "us er" must be a word/);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 5 as unknown as string }]), /chat message 0 \(user\): content must be a string/);
});

// ---------------------------------------------------------------------------------------------
// built-in byte-level tokenizer

test('byte tokenizer: ids are 3 + UTF-8 bytes, specials 0..2, exact round trips', () => {
  const tok = new ByteTokenizer();
  assert.equal(tok.kind, 'bytes');
  assert.equal(tok.vocabSize, 259);
  assert.equal(BYTE_VOCAB_SIZE, 259);
  assert.equal(tok.eosId, 2);
  assert.deepEqual(tok.encode('A'), [3 + 65]);
  assert.deepEqual(tok.encode('é'), [3 + 0xc3, 3 + 0xa9]);
  assert.deepEqual(tok.encode('€'), [3 + 0xe2, 3 + 0x82, 3 + 0xac]);
  assert.deepEqual(tok.encode('<|endoftext|><|im_start|>x<|im_end|>'), [0, 1, 3 + 0x78, 2]);
  assert.deepEqual(tok.encode('<|im_start'), [...Buffer.from('<|im_start')].map((b) => b + 3), 'an incomplete marker is plain text');
  for (const text of [VARIED, '', EXPECTED_CHAT, '\u0000\u00ff']) assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(tok.decode([3 + 0xf0, 3 + 0x9f, 3 + 0x93, 3 + 0x88]), '📈');
  assert.throws(() => tok.decode([3, 259]), /token id 259 at position 1 is outside the byte-level vocabulary 0\.\.258/);
  assert.throws(() => tok.decode([1.5]), /token id 1\.5 at position 0/);
  assert.equal(tok.tokenId('<|im_start|>'), 1);
  assert.equal(tok.tokenId('a'), 3 + 97);
  assert.equal(tok.tokenId('<0xFF>'), 258);
  assert.equal(tok.tokenId('ab'), undefined);
  assert.equal(tok.tokenId('é'), undefined);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'Buy or sell?' }]), EXPECTED_CHAT);
  assert.ok(EXPECTED_CHAT.includes(SMOLLM_DEFAULT_SYSTEM));
  assert.equal(new ByteTokenizer('Be brief.').applyChatTemplate([{ role: 'user', content: 'q' }], false),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n');
});
