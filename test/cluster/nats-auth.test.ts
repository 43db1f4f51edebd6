/**
 * NATS connection options pass through from configuration: user/password and token are used, and a
 * wrong secret gives one clear line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sluice } from '../harness/processes.js';

const CONNECTED_BUT_NO_JM = /^sluice: no JobManager answers for cluster 'default'/;

describe('NATS authentication from configuration', () => {
  let userPass: NatsServerHandle;
  let token: NatsServerHandle;

  beforeAll(async () => {
    [userPass, token] = await Promise.all([
      startNatsServer({
        extraConfig: 'authorization { user: sluice, password: s3cret }',
        waitForJetStream: false,
      }),
      startNatsServer({ extraConfig: 'authorization { token: t0ken }', waitForJetStream: false }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([userPass?.stop(), token?.stop()]);
  });

  it('connects with nats.user / nats.password, and names the problem when they are wrong', async () => {
    const ok = await sluice([
      'list',
      '--nats',
      userPass.url,
      '-D',
      'nats.user=sluice',
      '-D',
      'nats.password=s3cret',
    ]);
    expect(ok.stderr.trim()).toMatch(CONNECTED_BUT_NO_JM);
    const bad = await sluice([
      'list',
      '--nats',
      userPass.url,
      '-D',
      'nats.user=sluice',
      '-D',
      'nats.password=nope',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^sluice: cannot connect to NATS at .*: .*[Aa]uthorization/);
  });

  it('connects with a token from the environment', async () => {
    const ok = await sluice(['list', '--nats', token.url], { SLUICE_NATS_TOKEN: 't0ken' });
    expect(ok.stderr.trim()).toMatch(CONNECTED_BUT_NO_JM);
    const none = await sluice(['list', '--nats', token.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^sluice: cannot connect to NATS/);
  });
});
