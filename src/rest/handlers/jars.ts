/**
 * Job files ("jars" in Flink's paths): `POST /jars/upload`, `GET /jars`, `DELETE /jars/:jarid`,
 * `POST /jars/:jarid/run`.
 *
 * An upload is either `multipart/form-data` with the file in a `jarfile` field (as Flink), or the file itself
 * as the body (`application/octet-stream`, `text/plain`, or a JavaScript/TypeScript type) with
 * `?filename=job.ts`. Both are limited to `rest.max-upload-size`.
 */
import { z } from 'zod';
import { readBody, readJson } from '../body.js';
import { badRequest, RestError } from '../errors.js';
import type { JarStore } from '../jar-store.js';
import { multipartBoundary, parseMultipart } from '../multipart.js';
import { ok, type RequestContext, type Router } from '../router.js';

const RAW_TYPES = [
  'application/octet-stream',
  'text/plain',
  'application/javascript',
  'text/javascript',
  'application/typescript',
  'text/typescript',
];

/** Flink's JarRunRequestBody; `entryClass` is accepted and ignored. */
export const RunRequest = z
  .strictObject({
    parallelism: z.number().int().min(1).max(32768).nullish(),
    programArgs: z.string().nullish(),
    programArgsList: z.array(z.string()).nullish(),
    entryClass: z.string().nullish(),
    jobId: z.string().nullish(),
    savepointPath: z
      .string()
      .regex(/^[A-Za-z0-9_.\-/]{1,512}$/, 'a savepoint path as printed by sluice savepoint')
      .nullish(),
    allowNonRestoredState: z.boolean().nullish(),
    restoreMode: z.string().nullish(),
    /** FLIP-256: configuration of the job(s); only per-job keys (`job.autoscaler.*`), as `sluice run -D`. */
    flinkConfiguration: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
      .nullish(),
  })
  .refine((r) => r.programArgs == null || r.programArgsList == null, {
    message:
      'Confusing request: programArgs and programArgsList are specified, please use programArgsList only',
  });

export function jarRoutes(
  router: Router,
  jars: JarStore,
  address: () => string,
  maxUploadBytes: number,
): void {
  router.post('/jars/upload', async (ctx) => {
    const { name, data } = await readUpload(ctx, maxUploadBytes);
    const jar = await jars.upload(name, data);
    return ok({ filename: jar.id, status: 'success', name: jar.name, sha256: jar.sha256 });
  });

  router.get('/jars', () =>
    ok({
      address: address(),
      files: jars
        .list()
        .map((j) => ({ id: j.id, name: j.name, uploaded: j.uploaded, sha256: j.sha256, size: j.sizeBytes })),
    }),
  );

  router.delete('/jars/:jarid', async (ctx) => {
    await jars.delete(ctx.params.jarid!);
    return ok({});
  });

  router.post('/jars/:jarid/run', async (ctx) => {
    const id = ctx.params.jarid!;
    jars.get(id); // 404 before the body is read
    const request = await readJson(ctx.req, RunRequest);
    if (request.jobId != null) {
      throw new RestError(
        501,
        'jobId: choosing the job id is not supported; each job of the main gets a fresh one',
      );
    }
    const args =
      request.programArgsList ?? (request.programArgs == null ? [] : splitArgs(request.programArgs));
    const jobIds = await jars.run(id, {
      ...(request.parallelism == null ? {} : { parallelism: request.parallelism }),
      ...(request.savepointPath == null ? {} : { savepointPath: request.savepointPath }),
      ...(request.allowNonRestoredState === true ? { allowNonRestoredState: true } : {}),
      ...(request.flinkConfiguration == null ? {} : { configuration: request.flinkConfiguration }),
      args,
    });
    return ok({ jobid: jobIds[0], jobids: jobIds });
  });
}

/** The uploaded file's name and bytes; 400/415 are decided before the body is read. */
async function readUpload(ctx: RequestContext, limit: number): Promise<{ name: string; data: Buffer }> {
  const contentType = ctx.req.headers['content-type'];
  const boundary = multipartBoundary(contentType);
  if (boundary !== undefined) {
    const parts = parseMultipart(await readBody(ctx.req, limit), boundary);
    const file = parts.find((p) => p.name === 'jarfile');
    if (file === undefined) {
      const names = parts.map((p) => `'${p.name}'`).join(', ') || 'none';
      throw badRequest(`the multipart upload has no 'jarfile' field (fields: ${names})`);
    }
    const name = file.filename ?? ctx.query.get('filename');
    if (!name) throw badRequest("the 'jarfile' field has no filename");
    return { name, data: file.data };
  }
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === undefined || !RAW_TYPES.includes(type)) {
    throw new RestError(
      415,
      `Content-Type ${type === undefined ? 'missing' : `'${type}' not supported`}: upload multipart/form-data with a 'jarfile' field, or the file itself as application/octet-stream or text/plain with ?filename=`,
    );
  }
  const name = ctx.query.get('filename');
  if (!name)
    throw badRequest(
      'filename: the query parameter ?filename= is required for a raw upload (e.g. ?filename=job.ts)',
    );
  return { name, data: await readBody(ctx.req, limit) };
}

/** Flink's programArgs: split at whitespace; single or double quotes keep a word together. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  // A quoted piece, an unquoted piece, or a lone quote (taken literally).
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"']+)|(["'])/g;
  let current: string | undefined;
  let lastEnd = -1;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const word = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3] ?? m[4]!);
    // `--name="a b"` is one argument: adjacent pieces join.
    if (current !== undefined && m.index === lastEnd) current += word;
    else {
      if (current !== undefined) args.push(current);
      current = word;
    }
    lastEnd = m.index + m[0].length;
  }
  if (current !== undefined) args.push(current);
  return args;
}
