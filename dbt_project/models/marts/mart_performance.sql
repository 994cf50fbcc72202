-- Per ledger and window (7 days, 30 days, everything), ending on the ledger's last day:
-- return, Sharpe, Sortino, historical VaR, drawdown and the trades' win rate and profit factor.
-- Returns are daily (the TOTAL rows of mart_daily_pnl), annualised over periods_per_year.
-- VaR is the loss (a positive fraction) a day's return fell below 5 % / 1 % of the time.
{% set windows = [7, 30, none] %}
with daily as (
    select * from {{ ref('mart_daily_pnl') }} where pair = 'TOTAL'
),
ends as (
    select ledger, max(day) as as_of from daily group by ledger
),
windows as (
    {% for days in windows %}
    select ledger, as_of, {{ days if days else 'null' }} as window_days,
        {{ "as_of - interval " ~ days ~ " day" if days else "date '0001-01-01'" }} as after_day
    from ends
    {{ "union all" if not loop.last }}
    {% endfor %}
),
returns as (
    select w.ledger, w.window_days, w.as_of,
        count(d.day) as days,
        case when min(d.daily_return) > -1 then exp(sum(ln(1 + d.daily_return))) - 1 end as total_return,
        {{ sharpe('d.daily_return') }} as sharpe,
        {{ sortino('d.daily_return') }} as sortino,
        case when count(d.daily_return) > 1 then -quantile_cont(d.daily_return, 0.05) end as var_95,
        case when count(d.daily_return) > 1 then -quantile_cont(d.daily_return, 0.01) end as var_99,
        max(d.max_drawdown_in_day) as max_drawdown,
        arg_max(d.equity, d.day) as equity
    from windows w
    join daily d on d.ledger = w.ledger and d.day > w.after_day and d.day <= w.as_of
    group by all
),
trades as (
    select w.ledger, w.window_days,
        count(t.trade_id) as trades,
        case when count(t.trade_id) > 0 then count(case when t.won then 1 end) / count(t.trade_id) end as win_rate,
        case when sum(case when t.net_pnl < 0 then -t.net_pnl else 0 end) > 0
             then sum(case when t.net_pnl > 0 then t.net_pnl else 0 end)
                  / sum(case when t.net_pnl < 0 then -t.net_pnl else 0 end) end as profit_factor,
        coalesce(sum(t.net_pnl), 0) as net_pnl
    from windows w
    left join {{ ref('fct_trades') }} t
        on t.ledger = w.ledger and cast(t.exit_at as date) > w.after_day and cast(t.exit_at as date) <= w.as_of
    group by all
)
select r.ledger,
    coalesce(cast(r.window_days as varchar) || 'd', 'all') as period,
    r.window_days, r.as_of, r.days, r.total_return, r.sharpe, r.sortino, r.var_95, r.var_99,
    r.max_drawdown, r.equity, t.trades, t.win_rate, t.profit_factor, t.net_pnl
from returns r
join trades t on t.ledger = r.ledger and t.window_days is not distinct from r.window_days
