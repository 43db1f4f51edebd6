/**
 * Request bodies: read with a size limit (a declared `Content-Length` over the limit is refused before any
 * byte is read; a streamed body is dropped at the first chunk over it), and JSON bodies checked with zod.
 */
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { badRequest, RestError } from './errors.js';

/** JSON request bodies are small; uploads have their own limit (`rest.max-upload-size`). */
export const MAX_JSON_BYTES = 1024 * 1024;

export function tooLarge(limit: number, setting = 'rest.max-upload-size'): RestError {
  return new RestError(413, `request body is larger than ${limit} bytes (${setting})`);
}

/**
 * Reads the whole body, up to `limit` bytes; over it, 413 (see `setting` in the message). The request is
 * left paused, not destroyed (`for await` would destroy it, and the socket with it), so the answer can go out.
 */
export function readBody(req: IncomingMessage, limit: number, setting?: string): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit, setting));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= limit) return void chunks.push(chunk);
      done();
      req.pause();
      reject(tooLarge(limit, setting));
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks, size));
    };
    // The client went away: nobody will read the answer, but it must not count as a server error.
    const onError = (err: Error) => {
      done();
      reject(badRequest(`the request body could not be read: ${err.message}`));
    };
    const onClose = () => {
      done();
      reject(badRequest('the client closed the connection before the request body ended'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/** The body as JSON checked against `schema`; an empty body is `{}`. 400 names the field that is wrong. */
export async function readJson<S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> {
  const raw = (await readBody(req, MAX_JSON_BYTES, 'the limit of JSON bodies')).toString('utf8');
  let value: unknown = {};
  if (raw.trim() !== '') {
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw badRequest(`request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badRequest(`invalid request body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** `parallelism: Too small: expected number to be >=1; programArgsList.1: Invalid input: …` */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join('.')}: ${issue.message}`))
    .join('; ');
}
