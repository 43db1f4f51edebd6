/**
 * A small `multipart/form-data` parser (RFC 7578) for uploads that are already in memory (their size is
 * bounded by `rest.max-upload-size`). Parts are delimited by `--boundary` lines; each has headers, an
 * empty line and its content, which ends at the CRLF before the next delimiter. The body ends with
 * `--boundary--`. Only `Content-Disposition` (`name`, `filename`, `filename*`) and `Content-Type` are read.
 */
import { badRequest } from './errors.js';

export interface Part {
  /** The form field's name. */
  name: string;
  /** The file name of a file field (without any directory part the client may have sent). */
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The boundary of a `multipart/form-data` content type, or undefined for another type. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const [type, ...params] = contentType.split(';');
  if (type?.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    const value = unquote(param.slice(eq + 1).trim());
    if (value.length < 1 || value.length > 70)
      throw badRequest('multipart boundary must be 1 to 70 characters');
    return value;
  }
  throw badRequest('multipart/form-data request without a boundary parameter');
}

/** Splits a multipart body into its parts; 400 for a body that does not follow the format. */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  // The first delimiter starts the body or a line (a preamble before it is ignored).
  let at = body.subarray(0, delimiter.length).equals(delimiter)
    ? 0
    : indexAfter(body, Buffer.concat([CRLF, delimiter]), 0, 2);
  if (at < 0) throw badRequest('malformed multipart body: no boundary line');
  const next = Buffer.concat([CRLF, delimiter]);
  const parts: Part[] = [];
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts; // `--boundary--`: the end
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    while (body[at] === 0x20 || body[at] === 0x09) at++;
    if (body[at] !== 0x0d || body[at + 1] !== 0x0a)
      throw badRequest('malformed multipart body: bad boundary line');
    at += 2;
    const headerEnd = body.indexOf(HEADER_END, at);
    // A part without headers starts directly with the empty line.
    const noHeaders = body[at] === 0x0d && body[at + 1] === 0x0a;
    if (headerEnd < 0 && !noHeaders) throw badRequest('malformed multipart body: part headers do not end');
    const headers = noHeaders ? '' : body.subarray(at, headerEnd).toString('utf8');
    const contentStart = noHeaders ? at + 2 : headerEnd + HEADER_END.length;
    const contentEnd = findDelimiter(body, next, contentStart);
    if (contentEnd < 0) throw badRequest('malformed multipart body: no closing boundary');
    parts.push(partOf(headers, body.subarray(contentStart, contentEnd)));
    at = contentEnd + CRLF.length;
  }
}

/**
 * The next `CRLF--boundary` that is a delimiter line: followed by `--` or by optional blanks and CRLF
 * (a content line that merely starts with the boundary text is content).
 */
function findDelimiter(body: Buffer, delimiter: Buffer, from: number): number {
  for (let i = body.indexOf(delimiter, from); i >= 0; i = body.indexOf(delimiter, i + 1)) {
    let at = i + delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return i;
    while (body[at] === 0x20 || body[at] === 0x09) at++;
    if (body[at] === 0x0d && body[at + 1] === 0x0a) return i;
  }
  return -1;
}

function indexAfter(body: Buffer, needle: Buffer, from: number, skip: number): number {
  const i = body.indexOf(needle, from);
  return i < 0 ? -1 : i + skip;
}

function partOf(headerText: string, data: Buffer): Part {
  const headers = new Map<string, string>();
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw badRequest(`malformed multipart header line '${line.slice(0, 100)}'`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const disposition = headers.get('content-disposition');
  if (disposition === undefined) throw badRequest('multipart part without a Content-Disposition header');
  const params = dispositionParams(disposition);
  const name = params.get('name');
  if (name === undefined) throw badRequest('multipart part without a field name');
  const extended = params.get('filename*');
  const filename = extended !== undefined ? decodeExtended(extended) : params.get('filename');
  return {
    name,
    filename: filename === undefined ? undefined : baseName(filename),
    contentType: headers.get('content-type'),
    data,
  };
}

/** `form-data; name="jarfile"; filename="job.ts"` → name, filename. */
function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    params.set(m[1]!.toLowerCase(), unquote(m[2]!.trim()));
  }
  return params;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
    ? value.slice(1, -1).replace(/\\(.)/g, '$1')
    : value;
}

/** RFC 5987: `UTF-8''na%C3%AFve.ts`. */
function decodeExtended(value: string): string {
  const m = /^([^']*)'[^']*'(.*)$/.exec(value);
  try {
    return decodeURIComponent(m ? m[2]! : value);
  } catch {
    throw badRequest(`malformed file name '${value}'`);
  }
}

/** Browsers may send `C:\dir\job.ts`; only the last path component is the file's name. */
function baseName(filename: string): string {
  return filename.split(/[\\/]/).pop() ?? '';
}
