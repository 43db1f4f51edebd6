/** The pieces of the REST API that need no cluster: the multipart parser, programArgs splitting, the router. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/common/errors.js';
import { HTTP_STATUS_OF, RestError, toRestError } from '../../src/rest/errors.js';
import { splitArgs } from '../../src/rest/handlers/jars.js';
import { multipartBoundary, parseMultipart } from '../../src/rest/multipart.js';
import { ok, Router } from '../../src/rest/router.js';

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RestError ? err.status : -1;
  }
  return undefined;
}

describe('multipart/form-data', () => {
  it('reads the boundary, quoted or not, and refuses a multipart type without one', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('application/octet-stream')).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
    expect(statusOf(() => multipartBoundary('multipart/form-data'))).toBe(400);
    expect(statusOf(() => multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(71)}`))).toBe(400);
  });

  it('splits parts with binary content, a preamble, file names and content types', async () => {
    const form = new FormData();
    form.append('note', 'hello');
    const bytes = new Uint8Array([0, 13, 10, 45, 45, 255, 13, 10]); // CR LF -- inside the content
    form.append('jarfile', new Blob([bytes], { type: 'application/typescript' }), 'dir/job.ts');
    const request = new Request('http://x/', { method: 'POST', body: form });
    const boundary = multipartBoundary(request.headers.get('content-type') ?? undefined)!;
    const body = Buffer.concat([
      Buffer.from('preamble to ignore\r\n'),
      Buffer.from(await request.arrayBuffer()),
    ]);
    const parts = parseMultipart(body, boundary);
    expect(parts.map((p) => p.name)).toEqual(['note', 'jarfile']);
    expect(parts[0]!.filename).toBeUndefined();
    expect(parts[0]!.data.toString()).toBe('hello');
    expect(parts[1]!.filename).toBe('job.ts');
    expect(parts[1]!.contentType).toBe('application/typescript');
    expect([...parts[1]!.data]).toEqual([...bytes]);
  });

  it('takes filename* (RFC 5987) and the last part of a Windows path', () => {
    const body = Buffer.from(
      '--b\r\nContent-Disposition: form-data; name="jarfile"; filename="x.ts"; filename*=UTF-8\'\'na%C3%AFve.ts\r\n\r\nA\r\n' +
        '--b\r\nContent-Disposition: form-data; name="other"; filename="C:\\\\jobs\\\\w.ts"\r\n\r\nB\r\n--b--\r\n',
    );
    const parts = parseMultipart(body, 'b');
    expect(parts.map((p) => [p.name, p.filename, p.data.toString()])).toEqual([
      ['jarfile', 'naïve.ts', 'A'],
      ['other', 'w.ts', 'B'],
    ]);
  });

  it('takes a content line that starts with the boundary text as content', () => {
    const body = Buffer.from(
      '--b\r\nContent-Disposition: form-data; name="jarfile"; filename="a.ts"\r\n\r\nx\r\n--bar\r\ny\r\n--b--',
    );
    expect(parseMultipart(body, 'b')[0]!.data.toString()).toBe('x\r\n--bar\r\ny');
  });

  it('refuses malformed bodies with 400', () => {
    const cases = [
      'no boundary at all',
      '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nno closing boundary',
      '--b\r\nContent-Disposition: form-data; name="a"\r\nheaders never end',
      '--b\r\nno-colon-here\r\n\r\nA\r\n--b--',
      '--b\r\nContent-Type: text/plain\r\n\r\nA\r\n--b--',
      '--b\r\nContent-Disposition: form-data\r\n\r\nA\r\n--b--',
      '--bXY\r\n',
    ];
    for (const body of cases)
      expect(
        statusOf(() => parseMultipart(Buffer.from(body), 'b')),
        body,
      ).toBe(400);
  });
});

describe('programArgs', () => {
  it('splits at whitespace; quotes keep words together and join adjacent pieces', () => {
    expect(splitArgs('a "b c" d')).toEqual(['a', 'b c', 'd']);
    expect(splitArgs(`  --name="a b"   'x y'z  `)).toEqual(['--name=a b', 'x yz']);
    expect(splitArgs('say "\\"hi\\"" it\'s')).toEqual(['say', '"hi"', "it's"]);
    expect(splitArgs('')).toEqual([]);
  });
});

describe('router', () => {
  const router = new Router()
    .get('/jobs/overview', () => ok('overview'))
    .get('/jobs/:jobid', (ctx) => ok(ctx.params.jobid))
    .patch('/jobs/:jobid', () => ok('patched'));

  it('prefers literal segments to parameters, and decodes parameters', () => {
    expect(router.match('GET', '/jobs/overview').params).toEqual({});
    expect(router.match('GET', '/jobs/a%20b').params).toEqual({ jobid: 'a b' });
    expect(router.match('HEAD', '/jobs/x').params).toEqual({ jobid: 'x' });
  });

  it('answers 405 with Allow, 404 for unknown paths, 400 for undecodable ones', () => {
    try {
      router.match('PATCH', '/jobs/overview');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RestError);
      expect((err as RestError).status).toBe(405);
      expect((err as RestError).headers).toEqual({ Allow: 'GET, HEAD' });
    }
    expect(statusOf(() => router.match('DELETE', '/jobs/x'))).toBe(405);
    expect(statusOf(() => router.match('GET', '/jobs'))).toBe(404);
    expect(statusOf(() => router.match('GET', '/jobs/x/y'))).toBe(404);
    expect(statusOf(() => router.match('GET', '/jobs/%E0%A4%A'))).toBe(400);
  });
});

describe('error statuses', () => {
  it('maps every SluiceError code to an HTTP status', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(HTTP_STATUS_OF[code], code).toBeGreaterThanOrEqual(400);
    }
    expect(toRestError(new RestError(418, 'teapot')).status).toBe(418);
    expect(toRestError(new Error('bug')).status).toBe(500);
  });
});
