/** Everyone who uses QCAT acts in one of these roles (docs/architecture.md, "Who uses it"). */
export const ROLES = [
  'admin',
  'trader',
  'analyst',
  'risk_officer',
  'auditor',
  'operator',
  'viewer',
] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (value: unknown): value is Role => ROLES.some((role) => role === value);

interface PermissionRule {
  roles: readonly Role[];
  description: string;
}

/**
 * The permission matrix: every action and the roles allowed to take it. Routes declare one of
 * these; docs/permissions.md is generated from this table (`npm run docs:permissions`).
 */
export const PERMISSIONS = {
  'audit:read': {
    roles: ['admin', 'auditor', 'risk_officer'],
    description: 'read the audit trail: who did what, when, in which stream',
  },
  'audit:history': {
    roles: ['admin', 'auditor'],
    description:
      "read any stream's events, any aggregate's state as of an instant or position, and causation chains (secrets redacted)",
  },
  'audit:export': {
    roles: ['admin', 'auditor'],
    description: 'export the audit trail as NDJSON or CSV',
  },
  'audit:verify': {
    roles: ['admin', 'auditor'],
    description: "verify the log's hash chain and name the first broken link",
  },
  'projections:read': {
    roles: ['admin', 'operator', 'auditor'],
    description: 'see projection status: state, checkpoint, lag, errors',
  },
  'projections:rebuild': {
    roles: ['admin', 'operator'],
    description: 'rebuild a read model from the log',
  },
  'backups:read': {
    roles: ['admin', 'operator', 'auditor'],
    description:
      'see the backups, what the scheduled verify found of each, and the last restore drill',
  },
  'keys:read': {
    roles: ['admin'],
    description: 'list API keys (never their secrets)',
  },
  'keys:manage': {
    roles: ['admin'],
    description: 'issue, rotate and revoke API keys',
  },
  'session:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'see who the presented key belongs to',
  },
  'strategies:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'list strategies, their parameter versions, history and live status',
  },
  'strategies:create': {
    roles: ['admin', 'trader'],
    description: 'create a strategy (a draft)',
  },
  'strategies:edit': {
    roles: ['admin', 'trader', 'analyst'],
    description: 'edit a draft; request a parameter change of an approved strategy',
  },
  'strategies:operate': {
    roles: ['admin', 'trader'],
    description: 'submit for review, start paper trading, request live, resume, retire',
  },
  'strategies:pause': {
    roles: ['admin', 'trader', 'risk_officer'],
    description: 'pause a paper or live strategy',
  },
  'approvals:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'see approval requests and the queue of what one may approve',
  },
  'approvals:decide': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer'],
    description:
      "approve or reject a request, as its rule allows (never one's own; see the user guide)",
  },
  'approvals:withdraw': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer'],
    description: 'withdraw a request one made (admins: any request)',
  },
  'feed:subscribe': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'subscribe to live event feeds over WebSocket',
  },
  'market:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'read market data: instruments and candles',
  },
  'backtests:run': {
    roles: ['admin', 'trader', 'analyst'],
    description: 'request a backtest of a strategy kind or of a strategy over stored candles',
  },
  'backtests:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'list backtest runs and read their summary, trades and daily equity',
  },
  'optimizations:run': {
    roles: ['admin', 'trader', 'analyst'],
    description:
      'request a parameter optimization of a strategy kind or a strategy, and cancel one',
  },
  'optimizations:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description:
      'list optimizations and read their progress, trials, walk-forward folds and verdict',
  },
  'optimizations:policy': {
    roles: ['admin', 'risk_officer'],
    description:
      'request and revoke standing approvals that let automation adopt optimized parameters within bounds',
  },
  'trading:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description: 'read orders, fills, trades, positions, portfolios, equity and PnL',
  },
  'orders:write': {
    roles: ['admin', 'trader'],
    description: 'place a manual order for a paper or live strategy',
  },
  'orders:cancel': {
    roles: ['admin', 'trader', 'risk_officer'],
    description: 'cancel an open order, manual or placed by a strategy',
  },
  'portfolios:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description:
      'read portfolio allocations: policy, members, the allocation in force, target against actual, proposals with their figures',
  },
  'portfolios:manage': {
    roles: ['admin', 'risk_officer'],
    description: "set a portfolio's allocation policy and its member strategies",
  },
  'portfolios:propose': {
    roles: ['admin', 'risk_officer', 'analyst'],
    description:
      'propose an allocation (computed by the policy or given weights); above the threshold it waits for an approver',
  },
  'risk:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description:
      'read the risk overview, limits, trading states, kill switch, triggers, denied orders and exit rules',
  },
  'risk:operate': {
    roles: ['admin', 'risk_officer'],
    description:
      'set first limits, halt or reduce a scope, engage the kill switch; request limit changes, resets and the release',
  },
  'risk:exits': {
    roles: ['admin', 'trader', 'risk_officer'],
    description: "set a book's take-profit / stop-loss rules and move its levels",
  },
  'automation:read': {
    roles: ['admin', 'trader', 'analyst', 'risk_officer', 'auditor', 'operator', 'viewer'],
    description:
      'see each automation capability: on or off, thresholds, and its last decisions with reasons',
  },
  'hot_symbols:rank': {
    roles: ['admin', 'analyst', 'risk_officer'],
    description: 'rank the hot symbols now (the scheduled ranking is an automation capability)',
  },
  'hot_symbols:propose': {
    roles: ['admin', 'analyst'],
    description: 'propose a recommended hot symbol onto the tradable list',
  },
  'hot_symbols:approve': {
    roles: ['admin', 'risk_officer'],
    description:
      'approve (four eyes: not the proposer) or reject a proposed hot symbol for the tradable list',
  },
  'automation:configure': {
    roles: ['admin', 'risk_officer'],
    description: 'switch automation capabilities on or off and set their thresholds',
  },
} as const satisfies Record<string, PermissionRule>;

export type Permission = keyof typeof PERMISSIONS;

export const isPermission = (value: unknown): value is Permission =>
  typeof value === 'string' && Object.hasOwn(PERMISSIONS, value);

export const allows = (role: Role, permission: Permission): boolean =>
  (PERMISSIONS[permission].roles as readonly Role[]).includes(role);
