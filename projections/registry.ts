import { apiKeysProjection } from './api-keys.js';
import { auditTrail } from './audit-trail.js';
import { liveActivity } from './live-activity.js';
import type { Projection } from './projection.js';

/** Every projection QCAT runs. Add new read models here. */
export const allProjections = (redisPrefix: string): Projection[] => [
  auditTrail,
  apiKeysProjection,
  liveActivity(redisPrefix),
];
