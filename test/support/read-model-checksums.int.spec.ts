import { afterAll, beforeAll, expect, it } from 'vitest';
import { liveRiskKeys } from '../../projections/risk-live.js';
import { redisViewKeys } from '../../projections/redis-target.js';
import { redisViewChecksum } from './read-model-checksums.js';
import { connectTestRedis, type TestRedis } from './test-redis.js';
import { describeNeeding } from './tools.js';

describeNeeding(['redis'], 'redisViewChecksum', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await connectTestRedis('checksums');
  });
  afterAll(async () => {
    await redis.cleanup();
  });

  it('reads every key by its type: a changed hash field, list item or string changes it', async () => {
    const data = redisViewKeys(redis.prefix, 'live_risk', 1).data;
    const keys = liveRiskKeys(data);
    await redis.redis.hset(keys.states, { 'strategy:s1': '{"base":"HALTED"}', 'strategy:s2': 'x' });
    await redis.redis.hset(keys.killSwitch, { engaged: 'true', flatten: 'false' });
    await redis.redis.rpush(`${data}list`, 'a', 'b');
    await redis.redis.set(`${data}checkpoint`, '7');
    const sum = () => redisViewChecksum(redis.redis, redis.prefix, 'live_risk');
    const before = await sum();
    expect(before.keys).toBe(4);
    expect(await sum()).toEqual(before);

    await redis.redis.hset(keys.states, 'strategy:s1', '{"base":"ACTIVE"}');
    const changedField = await sum();
    expect(changedField.sha256).not.toBe(before.sha256);
    await redis.redis.hset(keys.killSwitch, 'reason', 'new field');
    const addedField = await sum();
    expect(addedField.sha256).not.toBe(changedField.sha256);
    await redis.redis.lset(`${data}list`, 1, 'c');
    const changedItem = await sum();
    expect(changedItem.sha256).not.toBe(addedField.sha256);
    await redis.redis.set(`${data}checkpoint`, '8');
    expect((await sum()).sha256).not.toBe(changedItem.sha256);

    // The same fields written in another order give the same sum.
    await redis.redis.del(keys.killSwitch);
    await redis.redis.hset(keys.killSwitch, { reason: 'new field', flatten: 'false' });
    await redis.redis.hset(keys.killSwitch, 'engaged', 'true');
    const reordered = await sum();
    await redis.redis.del(keys.killSwitch);
    await redis.redis.hset(keys.killSwitch, {
      engaged: 'true',
      flatten: 'false',
      reason: 'new field',
    });
    expect(await sum()).toEqual(reordered);
  });
});
