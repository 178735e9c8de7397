/**
 * The business metrics' names, help and labels (monitoring/business-metrics.ts reads their values
 * from the read models), by group, in the order they are registered and listed on /metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Strategies, orders, fills and portfolios, and the approvals waiting. */
export function tradingMetrics(registers: Registry[], collect: () => Promise<void>) {
  return {
    strategies: new Gauge({
      name: 'trading_strategies',
      help: 'Strategies by lifecycle status (every status, 0 when none)',
      labelNames: ['status'] as const,
      registers,
      collect,
    }),
    orders: new Gauge({
      name: 'trading_orders',
      help: 'Orders by status (every status, 0 when none)',
      labelNames: ['status'] as const,
      registers,
      collect,
    }),
    filledNotional: new Counter({
      name: 'trading_filled_notional_usd_total',
      help: 'Notional of every fill (price x quantity) by side, in USD (USDT counted 1:1)',
      labelNames: ['side'] as const,
      registers,
      collect,
    }),
    fills: new Counter({
      name: 'trading_fills_total',
      help: 'Fills by side',
      labelNames: ['side'] as const,
      registers,
      collect,
    }),
    pnl: new Gauge({
      name: 'trading_pnl_usd',
      help:
        'PnL of a portfolio in USD (USDT counted 1:1) by kind: realized (before fees), unrealized ' +
        '(at the last marks), fees (paid, negative); the sum over kind is the net PnL',
      labelNames: ['portfolio', 'kind'] as const,
      registers,
      collect,
    }),
    equity: new Gauge({
      name: 'trading_equity_usd',
      help: 'Mark-to-market equity of a portfolio (cash + positions at their marks), in USD',
      labelNames: ['portfolio'] as const,
      registers,
      collect,
    }),
    drawdown: new Gauge({
      name: 'trading_drawdown_ratio',
      help: 'Drawdown of a portfolio from its high-water mark: 1 - equity / high_water_mark',
      labelNames: ['portfolio'] as const,
      registers,
      collect,
    }),
    valuedAt: new Gauge({
      name: 'trading_portfolio_valuation_timestamp_seconds',
      help: 'Unix time (bar close) of the newest valuation of a portfolio by the paper engine',
      labelNames: ['portfolio'] as const,
      registers,
      collect,
    }),
    openPositions: new Gauge({
      name: 'trading_open_positions',
      help: 'Positions (strategy x symbol) of a portfolio with a non-zero quantity',
      labelNames: ['portfolio'] as const,
      registers,
      collect,
    }),
    approvalsPending: new Gauge({
      name: 'approvals_pending',
      help: 'Approval requests waiting for a decision, by kind (every kind, 0 when none)',
      labelNames: ['kind'] as const,
      registers,
      collect,
    }),
  };
}

/** Trading states per scope, the kill switch, breaker triggers, denied orders, daily loss. */
export function riskMetrics(registers: Registry[], collect: () => Promise<void>) {
  return {
    tradingState: new Gauge({
      name: 'risk_trading_state',
      help:
        'Base trading state of a risk scope (portfolio, strategy, symbol), one-hot: 1 for its ' +
        'base state (ACTIVE, REDUCING, HALTED), 0 for the others; scopes never changed have no ' +
        'series (they are ACTIVE); a temporary stricter state is in ' +
        'risk_temporary_state_until_timestamp_seconds',
      labelNames: ['scope_type', 'scope', 'state'] as const,
      registers,
      collect,
    }),
    temporaryStateUntil: new Gauge({
      name: 'risk_temporary_state_until_timestamp_seconds',
      help:
        'Unix time a temporary trading state of a scope ends (a price-breaker cooldown, the ' +
        'daily-loss breaker until 00:00 UTC), with the rule of the trigger that set it; in force ' +
        'while it is later than now',
      labelNames: ['scope_type', 'scope', 'state', 'rule'] as const,
      registers,
      collect,
    }),
    killSwitchEngaged: new Gauge({
      name: 'risk_kill_switch_engaged',
      help: '1 while the global kill switch is engaged, else 0',
      registers,
      collect,
    }),
    triggers: new Counter({
      name: 'risk_triggers_total',
      help: 'Circuit-breaker triggers (RiskTriggerFired) by rule (every rule, 0 when none)',
      labelNames: ['rule'] as const,
      registers,
      collect,
    }),
    ordersDenied: new Counter({
      name: 'risk_orders_denied_total',
      help: 'Orders the pre-trade risk check denied, by denial code (every code, 0 when none)',
      labelNames: ['code'] as const,
      registers,
      collect,
    }),
    dailyLoss: new Gauge({
      name: 'risk_daily_loss_ratio',
      help:
        'Loss of a portfolio within the current UTC day: 1 - equity / equity at the start of ' +
        'the day (the last valuation before 00:00 UTC); 0 without a loss or a valuation today',
      labelNames: ['portfolio'] as const,
      registers,
      collect,
    }),
  };
}

export type TradingMetrics = ReturnType<typeof tradingMetrics>;
export type RiskMetrics = ReturnType<typeof riskMetrics>;
