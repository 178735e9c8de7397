import { allocationsProjection } from './allocations.js';
import { apiKeysProjection } from './api-keys.js';
import { auditTrail } from './audit-trail.js';
import { automationDecisionsProjection } from './automation.js';
import { hotSymbolsProjection } from './hot-symbols.js';
import { backtestsProjection } from './backtests.js';
import { liveActivity } from './live-activity.js';
import { optimizationsProjection } from './optimizations.js';
import type { Projection } from './projection.js';
import { liveRiskView } from './risk-live.js';
import { riskProjection } from './risk.js';
import { approvalsProjection, strategiesProjection, strategyStatusView } from './strategies.js';
import { livePositionsView } from './trading-live.js';
import { tradingProjection } from './trading.js';

/**
 * Every projection QCAT runs. Add new read models here; process managers, which issue commands,
 * live in automation/ (ADR 010, ADR 027).
 */
export const allProjections = (redisPrefix: string): Projection[] => [
  auditTrail,
  apiKeysProjection,
  strategiesProjection,
  approvalsProjection,
  liveActivity(redisPrefix),
  strategyStatusView,
  tradingProjection,
  livePositionsView,
  riskProjection,
  liveRiskView,
  backtestsProjection,
  optimizationsProjection,
  automationDecisionsProjection,
  hotSymbolsProjection,
  allocationsProjection,
];
