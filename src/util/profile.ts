/**
 * Wall time by phase, for benchmarks. Code that can be measured takes an optional Profiler and wraps
 * each phase in `time(name, fn)`; without one it calls fn directly (see `timed`), so the hot path
 * pays one branch when nobody measures.
 *
 * Phases nest, and times are EXCLUSIVE: a phase's time excludes the phases timed inside it (e.g.
 * token counting inside prompt rendering is 'tokenize', not 'prompt'). So the phases of one run add
 * up to the time spent inside any of them, and "the rest" is the wall time minus that sum.
 * Counters (`count`) hold any other per-run quantity (tokens computed, cache hits, ...).
 */

export interface PhaseTotals {
  seconds: number;
  calls: number;
}

export interface ProfileSnapshot {
  phases: Record<string, PhaseTotals>;
  counters: Record<string, number>;
}

export class Profiler {
  private readonly phases = new Map<string, PhaseTotals>();
  private readonly counters = new Map<string, number>();
  /** Time spent in phases nested inside each open phase (innermost last). */
  private readonly childSeconds: number[] = [];
  /** Names of the open phases (innermost last). */
  private readonly open: string[] = [];

  time<T>(phase: string, fn: () => T): T {
    const t0 = performance.now();
    this.childSeconds.push(0);
    this.open.push(phase);
    try {
      return fn();
    } finally {
      const elapsed = (performance.now() - t0) / 1000;
      this.open.pop();
      const inner = this.childSeconds.pop()!;
      const p = this.phases.get(phase);
      if (p) { p.seconds += elapsed - inner; p.calls += 1; } else this.phases.set(phase, { seconds: elapsed - inner, calls: 1 });
      if (this.childSeconds.length > 0) this.childSeconds[this.childSeconds.length - 1]! += elapsed;
    }
  }

  /** The innermost open phase (what a measurement taken now belongs to), or undefined outside every phase. */
  current(): string | undefined {
    return this.open[this.open.length - 1];
  }

  count(name: string, n: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  /** Totals so far (copies). */
  snapshot(): ProfileSnapshot {
    const phases: Record<string, PhaseTotals> = {};
    for (const [k, v] of this.phases) phases[k] = { ...v };
    return { phases, counters: Object.fromEntries(this.counters) };
  }

  /** Totals since `before` (a snapshot of this profiler). */
  since(before: ProfileSnapshot): ProfileSnapshot {
    const now = this.snapshot();
    for (const [k, v] of Object.entries(now.phases)) {
      const b = before.phases[k];
      if (b) { v.seconds -= b.seconds; v.calls -= b.calls; }
    }
    for (const k of Object.keys(now.counters)) now.counters[k]! -= before.counters[k] ?? 0;
    return now;
  }
}

/** fn() inside phase `phase` of `profiler`, or plain fn() without one. */
export function timed<T>(profiler: Profiler | undefined, phase: string, fn: () => T): T {
  return profiler === undefined ? fn() : profiler.time(phase, fn);
}
