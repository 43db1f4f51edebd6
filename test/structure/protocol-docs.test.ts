/**
 * docs/protocol.md is generated from the protocol declarations: this fails when it is stale (a message,
 * schema or description changed without `npm run docs:protocol`), and checks that every client-facing
 * ask is listed with its request and reply.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_DOC, renderProtocolDoc } from '../../scripts/protocol-docs.js';
import { DispatcherProtocol } from '../../src/runtime/dispatcher/protocol.js';

describe('docs/protocol.md', () => {
  it('is what the declarations print (run `npm run docs:protocol` after changing a protocol)', () => {
    expect(readFileSync(PROTOCOL_DOC, 'utf8')).toBe(renderProtocolDoc());
  });

  it('lists every client-facing ask with its request and reply', () => {
    const doc = renderProtocolDoc();
    for (const type of Object.keys(DispatcherProtocol.messages)) {
      const section = doc.split(`### \`sluice.<clusterId>.dispatcher.${type}\``)[1]?.split('\n### ')[0];
      expect(section, type).toBeDefined();
      expect(section).toContain('JSON or msgpack');
      expect(section).toContain('Request:');
      expect(section).toContain('Reply `body`:');
    }
  });
});
