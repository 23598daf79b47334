/**
 * Errors the server answers with, in OpenAI's shape {error: {message, type, param, code}}, so that
 * OpenAI clients surface the message (the openai npm client puts it in APIError.message).
 */
import type { z } from 'zod';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'server_error';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Allow, WWW-Authenticate, ...). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { error: { message: string; type: ErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 from the first zod issue: the field path (as OpenAI's `param`) and what was wrong with it. */
export function fromZodError(err: z.ZodError, what: string): HttpError {
  const issue = err.issues[0]!;
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const where = param ? `field '${param}'` : 'body';
  const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more problem(s))` : '';
  return new HttpError(400, `Invalid ${what}: ${where}: ${issue.message}${more}`, 'invalid_request_error', param, 'invalid_value');
}
