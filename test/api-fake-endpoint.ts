// A tiny scripted chat-completions endpoint on 127.0.0.1 for ApiAgent tests: each request gets the
// next scripted answer (or the function's answer), and every request is recorded.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Observation } from '../src/env/types.js';

export type FakeAnswer =
  | { status: number; headers?: Record<string, string>; body: unknown; delayMs?: number }
  | { raw: string; status?: number; contentType?: string }
  | { hang: true };

export interface RecordedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  at: number;
}

/** A normal completion whose assistant content is `content`. */
export function completion(content: string | null): FakeAnswer {
  return {
    status: 200,
    body: {
      id: 'x', object: 'chat.completion', created: 0, model: 'fake',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    },
  };
}

export function apiError(status: number, message: string, headers: Record<string, string> = {}): FakeAnswer {
  return { status, headers, body: { error: { message, type: 'x', param: null, code: null } } };
}

export class FakeEndpoint {
  readonly requests: RecordedRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private server: Server;
  private script: FakeAnswer[] = [];
  url = '';

  constructor(private fallback: (req: RecordedRequest, index: number) => FakeAnswer = () => completion('{"action": "hold"}')) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: Record<string, unknown> = {};
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>; } catch { /* recorded as {} */ }
        const rec: RecordedRequest = { path: req.url ?? '', headers: req.headers, body, at: performance.now() };
        this.requests.push(rec);
        const answer = this.script.shift() ?? this.fallback(rec, this.requests.length - 1);
        if ('hang' in answer) return; // never answer: the client must time out
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        const finish = (): void => {
          this.inFlight--;
          if ('raw' in answer) {
            res.writeHead(answer.status ?? 200, { 'Content-Type': answer.contentType ?? 'text/plain' });
            res.end(answer.raw);
            return;
          }
          res.writeHead(answer.status, { 'Content-Type': 'application/json', ...(answer.headers ?? {}) });
          res.end(JSON.stringify(answer.body));
        };
        const delay = 'delayMs' in answer ? answer.delayMs ?? 0 : 0;
        if (delay > 0) setTimeout(finish, delay); else finish();
      });
    });
  }

  /** Queue answers for the next requests (then the fallback answers). */
  push(...answers: FakeAnswer[]): this {
    this.script.push(...answers);
    return this;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A hand-made observation for day `i` of a rising or falling path. */
export function makeObservation(i: number, opts: { asset?: string; trend?: number } = {}): Observation {
  const trend = opts.trend ?? 1;
  const n = 25;
  const dates: string[] = [];
  const prices: number[] = [];
  for (let k = 0; k < n; k++) {
    const day = i + k;
    dates.push(new Date(Date.UTC(2021, 0, 1 + day)).toISOString().slice(0, 10));
    prices.push(100 + trend * day + (k % 3));
  }
  return {
    asset: opts.asset ?? 'TEST',
    date: dates[n - 1]!,
    t: i + n - 1,
    step: i,
    dates,
    prices,
    text: [{ kind: 'news', text: `Headline for day ${i}. (Sentiment: neutral)` }],
    account: { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 },
  };
}
