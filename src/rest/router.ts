/**
 * A tiny router: method + path pattern (`/jobs/:jobid/exceptions`) → handler. A path that matches several
 * patterns goes to the most specific one (literal segments beat parameters, left to right), so
 * `/jobs/overview` is not taken for a job id. A path that matches but not with this method is 405 with
 * `Allow`; a path that matches nothing is 404. HEAD is served by the GET handler (Node sends no body).
 */
import type { IncomingMessage } from 'node:http';
import { badRequest, notFound, RestError } from './errors.js';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly method: string;
  /** The path without the optional `/v1` prefix and trailing slash. */
  readonly path: string;
  /** Decoded path parameters by name. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

export interface Reply {
  status: number;
  body: unknown;
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

export const ok = (body: unknown, status = 200): Reply => ({ status, body });

interface Route {
  pattern: string;
  segments: string[];
  handlers: Map<string, Handler>;
}

export interface Match {
  handler: Handler;
  params: Record<string, string>;
}

export class Router {
  readonly #routes: Route[] = [];

  get(pattern: string, handler: Handler): this {
    return this.add('GET', pattern, handler);
  }
  post(pattern: string, handler: Handler): this {
    return this.add('POST', pattern, handler);
  }
  put(pattern: string, handler: Handler): this {
    return this.add('PUT', pattern, handler);
  }
  patch(pattern: string, handler: Handler): this {
    return this.add('PATCH', pattern, handler);
  }
  delete(pattern: string, handler: Handler): this {
    return this.add('DELETE', pattern, handler);
  }

  add(method: string, pattern: string, handler: Handler): this {
    let route = this.#routes.find((r) => r.pattern === pattern);
    if (route === undefined) {
      route = { pattern, segments: split(pattern), handlers: new Map() };
      this.#routes.push(route);
    }
    if (route.handlers.has(method)) throw new Error(`route ${method} ${pattern} is defined twice`);
    route.handlers.set(method, handler);
    return this;
  }

  /** The handler for a request, or a RestError (404 / 405 / 400 for an undecodable path). */
  match(method: string, path: string): Match {
    const segments = split(path);
    let best: { route: Route; score: number[] } | undefined;
    for (const route of this.#routes) {
      const score = scoreOf(route.segments, segments);
      if (score !== undefined && (best === undefined || compare(score, best.score) > 0)) {
        best = { route, score };
      }
    }
    if (best === undefined) throw notFound(`Not found: ${path}`);
    const { route } = best;
    const handler = route.handlers.get(method) ?? (method === 'HEAD' ? route.handlers.get('GET') : undefined);
    if (handler === undefined) {
      const allowed = [...route.handlers.keys()];
      if (allowed.includes('GET')) allowed.push('HEAD');
      throw new RestError(
        405,
        `method ${method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`,
        {
          Allow: allowed.join(', '),
        },
      );
    }
    const params: Record<string, string> = {};
    route.segments.forEach((s, i) => {
      if (s.startsWith(':')) params[s.slice(1)] = decode(segments[i]!);
    });
    return { handler, params };
  }
}

/** `/a/b/` → ['a', 'b']; the root is []. */
function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** Per segment 1 for a literal match, 0 for a parameter; undefined when the pattern does not match. */
function scoreOf(pattern: string[], segments: string[]): number[] | undefined {
  if (pattern.length !== segments.length) return undefined;
  const score: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) score.push(0);
    else if (p === segments[i]) score.push(1);
    else return undefined;
  }
  return score;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`malformed path segment '${segment}'`);
  }
}
