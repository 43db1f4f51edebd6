/**
 * The web dashboard: static files served next to the REST API, `/` (and `/index.html`) the page,
 * `/web/<file>` its script and style sheet. The files live in `src/web/` (plain JavaScript, CSS and HTML)
 * and are copied to `dist/web/` by `npm run build`; this module finds them next to itself
 * (`../../web/` of `dist/rest/handlers/web.js` or `src/rest/handlers/web.ts`).
 *
 * The router's handlers answer JSON, so the dashboard sits in front of it: a GET or HEAD of one of the
 * dashboard's paths is answered here, every other request goes on to the API (`/web/unknown.js` gets the
 * API's 404).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** The dashboard's file for a request path, or undefined when the path is not one of the dashboard's. */
export function dashboardFile(path: string): string | undefined {
  if (path === '/' || path === '/index.html') return 'index.html';
  const asset = /^\/web\/([\w-]+(?:\.[\w-]+)*)$/.exec(path);
  if (asset === null) return undefined;
  const name = asset[1]!;
  return TYPES[name.slice(name.lastIndexOf('.') + 1)] === undefined ? undefined : name;
}

/** A request listener that serves the dashboard and hands everything else to `api`. */
export function withDashboard(api: RequestListener, dir = DASHBOARD_DIR): RequestListener {
  return (req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const name = method === 'GET' || method === 'HEAD' ? dashboardFile(path) : undefined;
    if (name === undefined) return void api(req, res);
    void serve(req, res, `${dir}${name}`).then((served) => {
      if (!served) api(req, res);
    });
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, file: string): Promise<boolean> {
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch {
    return false; // not built (no dist/web): the API's 404
  }
  if (res.destroyed) return true;
  res.statusCode = 200;
  res.setHeader('Content-Type', TYPES[file.slice(file.lastIndexOf('.') + 1)]!);
  res.setHeader('Content-Length', content.length);
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(req.method === 'HEAD' ? undefined : content);
  return true;
}
