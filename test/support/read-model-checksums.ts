import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { activeGenerationKey, redisViewKeys } from '../../projections/redis-target.js';

/** md5 of a whole table or view, row by row in `orderBy` order, plus its row count. */
export async function tableChecksum(
  client: pg.Pool | pg.ClientBase,
  relation: string,
  orderBy: string,
): Promise<{ rows: number; md5: string }> {
  const { rows } = await client.query<{ rows: string; md5: string | null }>(
    `SELECT count(*) AS rows, md5(string_agg(t::text, '|' ORDER BY ${orderBy})) AS md5 FROM ${relation} t`,
  );
  return { rows: Number(rows[0]?.rows ?? 0), md5: rows[0]?.md5 ?? 'empty' };
}

/** A key's whole value, read the way its type is (hash fields and set members sorted). */
async function valueOf(redis: Redis, key: string, type: string): Promise<unknown> {
  switch (type) {
    case 'string':
      return redis.get(key);
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'hash':
      return Object.entries(await redis.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : 1));
    case 'set':
      return (await redis.smembers(key)).sort();
    case 'zset':
      return redis.zrange(key, 0, -1, 'WITHSCORES');
    case 'stream':
      return redis.xrange(key, '-', '+');
    default:
      throw new Error(`redisViewChecksum: ${key} is a ${type}, which it cannot read`);
  }
}

/**
 * sha256 over every key of the live generation of a Redis view (names without the generation,
 * values by type), so a rebuilt generation compares equal to the live one it replaces.
 */
export async function redisViewChecksum(
  redis: Redis,
  prefix: string,
  name: string,
): Promise<{ keys: number; sha256: string }> {
  const generation = Number((await redis.get(activeGenerationKey(prefix, name))) ?? '1');
  const base = redisViewKeys(prefix, name, generation).data;
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  const hash = createHash('sha256');
  for (const key of found.sort()) {
    const type = await redis.type(key);
    const value = await valueOf(redis, key, type);
    hash.update(`${key.slice(base.length)}:${type}=${JSON.stringify(value)}\n`);
  }
  return { keys: found.length, sha256: hash.digest('hex') };
}
