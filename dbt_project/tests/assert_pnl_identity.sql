{{ config(meta={'dagster': {'ref': {'name': 'fct_trades'}}}) }}
-- Each ledger with no position open at its last snapshot ends where its trades took it:
-- final equity = capital + gross P&L of the closed trades (from their fills) - their fees.
with last as (
    select ledger, arg_max(equity, (snapshot_at, id)) as equity, arg_max(open_positions, (snapshot_at, id)) as open_positions
    from {{ ref('stg_portfolio_snapshots') }}
    group by ledger
),
trades as (
    select ledger, sum(gross_pnl) as gross_pnl, sum(fees) as fees from {{ ref('fct_trades') }} group by ledger
)
select l.ledger, s.capital, l.equity, t.gross_pnl, t.fees,
    s.capital + coalesce(t.gross_pnl, 0) - coalesce(t.fees, 0) as expected
from last l
join {{ ref('stg_sources') }} s using (ledger)
left join trades t using (ledger)
where l.open_positions = 0
  and abs(l.equity - (s.capital + coalesce(t.gross_pnl, 0) - coalesce(t.fees, 0))) > {{ var('money_tolerance') }}
