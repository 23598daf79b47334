// The docs name only flags that exist: every `flag-trader <command> ... --flag` written in README.md and
// docs/*.md (code blocks and inline code; also `npm start -- --flag`, which runs `demo`) is checked
// against the commander definition of that command, built the way src/cli/main.ts builds the program.
// A table introduced by `<!-- flags: COMMAND -->` has the `--flag` spans of its lines checked the same way.
// Hidden options (deprecated aliases, not in --help) count as wrong in the docs too.
// Generated reports (docs/learning/, docs/reproduction/) are not scanned: only README.md and docs/*.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { repoRoot } from './shared-paths.js';

const ROOT = repoRoot();

/** The `flag-trader` program: every `registerX(program)` call of src/cli/main.ts, imported from its module. */
async function buildProgram(): Promise<Command> {
  const main = readFileSync(join(ROOT, 'src', 'cli', 'main.ts'), 'utf8');
  const moduleOf = new Map<string, string>();
  for (const m of main.matchAll(/import\s*\{([^}]*)\}\s*from\s*'\.\/([\w-]+)\.js'/g)) {
    for (const name of m[1]!.split(',')) moduleOf.set(name.trim(), m[2]!);
  }
  const calls = [...main.matchAll(/^\s*(register\w+)\(program\);/gm)].map((m) => m[1]!);
  assert.ok(calls.length > 0, 'src/cli/main.ts registers its commands with registerX(program) calls');
  const program = new Command('flag-trader');
  for (const fn of calls) {
    const mod = moduleOf.get(fn);
    assert.ok(mod, `src/cli/main.ts calls ${fn} but no import of it from ./<module>.js was found`);
    const exports = (await import(new URL(`../src/cli/${mod}.js`, import.meta.url).href)) as Record<string, unknown>;
    const register = exports[fn];
    assert.equal(typeof register, 'function', `${fn} is exported by src/cli/${mod}`);
    (register as (p: Command) => void)(program);
  }
  return program;
}

/** A piece of Markdown that holds shell text: a logical code-block line or an inline code span. */
interface Segment { text: string; lineAt(offset: number): number; table?: string }

/** Code-block lines (a trailing `\` joins the next line) and inline code spans, each with its line numbers. */
function segments(md: string): Segment[] {
  const lines = md.split('\n');
  const out: Segment[] = [];
  const prose: string[] = [];
  let fence: string | null = null;
  let parts: string[] = [];
  let starts: Array<[number, number]> = []; // [offset in the joined text, line]
  const flush = () => {
    if (parts.length === 0) return;
    const at = starts;
    out.push({
      text: parts.join(' '),
      lineAt: (o) => { let l = at[0]![1]; for (const [s, n] of at) if (s <= o) l = n; return l; },
    });
    parts = []; starts = [];
  };
  lines.forEach((raw, i) => {
    const fm = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(raw);
    // An opening backtick fence has no backtick after it (CommonMark): ```` ``` ```` in prose is inline code.
    if (fence === null && fm && !(fm[1]![0] === '`' && fm[2]!.includes('`'))) { fence = fm[1]!; prose.push(''); return; }
    if (fence !== null) {
      prose.push('');
      if (fm && fm[1]![0] === fence[0] && fm[1]!.length >= fence.length && fm[2]!.trim() === '') { flush(); fence = null; return; }
      const cont = /\\\s*$/.test(raw);
      starts.push([parts.reduce((n, p) => n + p.length + 1, 0), i + 1]);
      parts.push(cont ? raw.replace(/\\\s*$/, '') : raw);
      if (!cont) flush();
      return;
    }
    prose.push(raw);
  });
  flush();
  // Inline code spans of the prose (code blocks blanked, so line numbers stay), not across paragraphs.
  const text = prose.join('\n');
  const lineStart: number[] = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStart.push(i + 1);
  const lineOf = (offset: number) => { let l = 0; while (l + 1 < lineStart.length && lineStart[l + 1]! <= offset) l++; return l + 1; };
  // `<!-- flags: COMMAND -->` marks the block of lines after it (to the next blank line) as flags of COMMAND.
  const tableOf = new Map<number, string>();
  prose.forEach((l, i) => {
    const m = /<!--\s*flags:\s*([a-z][a-z0-9 -]*?)\s*-->/.exec(l);
    if (!m) return;
    for (let j = i + 1; j < prose.length && prose[j]!.trim() !== ''; j++) tableOf.set(j + 1, m[1]!);
  });
  for (const m of text.matchAll(/(?<!`)(`+)(?!`)((?:[^\n]|\n(?![ \t]*\n))+?)(?<!`)\1(?!`)/g)) {
    const base = m.index! + m[1]!.length;
    const seg: Segment = { text: m[2]!.replace(/\n/g, ' '), lineAt: (o) => lineOf(base + o) };
    const table = tableOf.get(lineOf(base));
    if (table !== undefined) seg.table = table;
    out.push(seg);
  }
  return out;
}

interface Reference { line: number; command: string; flags: Array<{ flag: string; line: number }>; unknownCommand?: string }

const INVOCATION = /(?:^|[\s$(])(flag-trader|npm start --|node\s+(?:--import\s+tsx\s+)?\S*main\.[jt]s)(?=\s|$)/g;
const FLAG = /^--[a-z0-9][a-z0-9-]*$/;

/** The commands a segment runs: `flag-trader CMD [SUB] ...` up to a pipe, `&&`, `;`, `&` or a `#` comment. */
function references(seg: Segment, program: Command): Reference[] {
  const refs: Reference[] = [];
  if (seg.table !== undefined) {
    const first = /^\s*(--[a-z0-9][a-z0-9-]*)/.exec(seg.text);
    if (first) refs.push({ line: seg.lineAt(0), command: seg.table, flags: [{ flag: first[1]!, line: seg.lineAt(0) }] });
  }
  for (const m of seg.text.matchAll(INVOCATION)) {
    const from = m.index! + m[0].length;
    const stop = /\s#|\|\||&&|[|;]|&(?=\s|$)/.exec(seg.text.slice(from));
    const rest = seg.text.slice(from, stop ? from + stop.index : undefined);
    const tokens = [...rest.matchAll(/\S+/g)].map((t) => ({ text: t[0], line: seg.lineAt(from + t.index!) }));
    let words: string[] = [];
    if (m[1] === 'npm start --') {
      words = ['demo'];
    } else {
      const cmd = tokens.shift();
      if (!cmd || !/^[a-z][a-z0-9-]*$/.test(cmd.text)) continue; // a placeholder (<command>, COMMAND) or nothing
      words = [cmd.text];
      const top = program.commands.find((c) => c.name() === cmd.text);
      if (!top) { refs.push({ line: cmd.line, command: cmd.text, flags: [], unknownCommand: cmd.text }); continue; }
      const sub = tokens[0] && top.commands.find((c) => c.name() === tokens[0]!.text);
      if (sub) { words.push(sub.name()); tokens.shift(); }
    }
    const flags = tokens
      .map((t) => ({ flag: t.text.replace(/^[[(]+/, '').replace(/=.*$/, '').replace(/[\]),.:]+$/, ''), line: t.line }))
      .filter((t) => FLAG.test(t.flag));
    refs.push({ line: seg.lineAt(m.index!), command: words.join(' '), flags });
  }
  return refs;
}

function commandOf(program: Command, words: string): Command | undefined {
  let c: Command | undefined = program;
  for (const w of words.split(' ')) c = c?.commands.find((x) => x.name() === w);
  return c;
}

/** Every unknown command or flag in one Markdown text, as "file:line: ..." lines. */
function problems(file: string, md: string, program: Command): { problems: string[]; checked: number } {
  const out: string[] = [];
  let checked = 0;
  for (const seg of segments(md)) {
    for (const ref of references(seg, program)) {
      if (ref.unknownCommand !== undefined) { out.push(`${file}:${ref.line}: unknown command flag-trader ${ref.unknownCommand}`); continue; }
      const cmd = commandOf(program, ref.command);
      if (!cmd) { out.push(`${file}:${ref.line}: unknown command flag-trader ${ref.command}`); continue; }
      // A hidden option (a deprecated alias, not in --help) is not for the docs either.
      const shown = new Set(['--help', ...cmd.options.filter((o) => !o.hidden).map((o) => o.long).filter((l): l is string => l !== undefined)]);
      const hidden = new Set(cmd.options.filter((o) => o.hidden).map((o) => o.long));
      for (const f of ref.flags) {
        checked++;
        if (hidden.has(f.flag)) out.push(`${file}:${f.line}: flag-trader ${ref.command}: hidden flag ${f.flag} (deprecated; not in --help)`);
        else if (!shown.has(f.flag)) out.push(`${file}:${f.line}: flag-trader ${ref.command}: unknown flag ${f.flag}`);
      }
    }
  }
  return { problems: out, checked };
}

const programP = buildProgram();

test('the scanner finds flags in code blocks, continuation lines, inline code and marked tables', async () => {
  const program = await programP;
  const md = [
    '# t',                                                    // 1
    '```sh',                                                  // 2
    'flag-trader backtest --data x.csv \\',                   // 3
    '  --no-such-flag 1 | grep x --bogus   # --also-not',     // 4
    '$ flag-trader model info --model random:tiny --nope',    // 5
    'flag-trader serve: model baseline-momentum at http://x', // 6 (output, not a command)
    '```',                                                    // 7
    'Run `flag-trader train --seed 1',                        // 8
    '--wrong-one` or `npm start -- --workers 1 --zzz`.',      // 9
    'Also `flag-trader nonsense --x` and `flag-trader <command> --y`.', // 10
    '<!-- flags: serve -->',                                  // 11
    '| flag | default |',                                      // 12
    '| `--port P` | 0 |',                                     // 13
    '| `--not-a-serve-flag` | x |',                           // 14
    '',
    'After the table `--free-text` is not checked.',
  ].join('\n');
  const { problems: p } = problems('x.md', md, program);
  assert.deepEqual(p.sort(), [
    'x.md:10: unknown command flag-trader nonsense',
    'x.md:14: flag-trader serve: unknown flag --not-a-serve-flag',
    'x.md:4: flag-trader backtest: unknown flag --no-such-flag',
    'x.md:5: flag-trader model info: unknown flag --nope',
    'x.md:9: flag-trader demo: unknown flag --zzz',
    'x.md:9: flag-trader train: unknown flag --wrong-one',
  ].sort());
});

test('a hidden option (a deprecated alias) is reported as such', () => {
  const p = new Command('flag-trader');
  p.command('x').option('--shown').addOption(new Option('--old').hideHelp());
  assert.deepEqual(problems('y.md', 'Run `flag-trader x --shown --old --nope`.', p).problems, [
    'y.md:1: flag-trader x: hidden flag --old (deprecated; not in --help)',
    'y.md:1: flag-trader x: unknown flag --nope',
  ]);
});

test('every flag-trader flag named in README.md and docs/*.md exists', async () => {
  const program = await programP;
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  const all: string[] = [];
  let checked = 0;
  for (const f of files) {
    const r = problems(f, readFileSync(join(ROOT, f), 'utf8'), program);
    all.push(...r.problems);
    checked += r.checked;
  }
  assert.ok(checked >= 50, `only ${checked} flags found in the docs: is the scanner still reading them?`);
  assert.deepEqual(all, [], `flags or commands in the docs that the CLI does not have:\n${all.join('\n')}`);
});
