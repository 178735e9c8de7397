import { desk } from './engine/desk.js';
import { portfolios } from './portfolio/portfolio.js';
import { exits } from './risk/exits.js';
import { killSwitch } from './risk/kill-switch.js';
import { limits } from './risk/limits.js';
import { tradingStates } from './risk/trading-state.js';
import { strategies } from './strategies/strategy.js';

/**
 * The deciders whose streams grow in real use, with their snapshot schema. Bump the version when
 * a decider's state shape or its evolve changes, or an upcaster of its events is added: older
 * snapshots are then ignored and rewritten.
 */
export const SNAPSHOT_SCHEMAS: ReadonlyMap<object, string> = new Map<object, string>([
  [desk, 'desk/2'],
  [strategies, 'strategy/1'],
  [portfolios, 'portfolio/1'],
  [tradingStates, 'risk-state/1'],
  [exits, 'risk-exits/1'],
  [limits, 'risk-limits/1'],
  [killSwitch, 'risk-killswitch/1'],
]);

/** For the command handler's `snapshots.schemaOf`. */
export const snapshotSchemaOf = (decider: object): string | undefined =>
  SNAPSHOT_SCHEMAS.get(decider);
