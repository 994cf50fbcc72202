-- Per ledger and day: each pair's realised P&L of the trades closed that day, and a TOTAL row
-- with the account's equity at the day's last snapshot (by time, then row: a fill and a periodic
-- snapshot can share a moment), its return and drawdown.
with trades as (
    select ledger, pair, cast(exit_at as date) as day,
        count(*) as trades, count(case when won then 1 end) as wins,
        sum(net_pnl) as net_pnl, sum(fees) as fees
    from {{ ref('fct_trades') }}
    group by all
),
snapshots as (
    select ledger, cast(snapshot_at as date) as day,
        arg_max(equity, (snapshot_at, id)) as equity,
        arg_max(drawdown, (snapshot_at, id)) as drawdown,
        max(drawdown) as max_drawdown_in_day,
        arg_max(open_positions, (snapshot_at, id)) as open_positions
    from {{ ref('stg_portfolio_snapshots') }}
    group by all
),
days as (
    select s.*, coalesce(lag(s.equity) over (partition by s.ledger order by s.day), c.capital) as previous_equity
    from snapshots s
    left join {{ ref('stg_sources') }} c on c.ledger = s.ledger
),
totals as (
    select d.ledger, 'TOTAL' as pair, d.day,
        coalesce(t.trades, 0) as trades, coalesce(t.wins, 0) as wins,
        coalesce(t.net_pnl, 0) as net_pnl, coalesce(t.fees, 0) as fees,
        d.equity,
        case when d.previous_equity > 0 then d.equity / d.previous_equity - 1 end as daily_return,
        d.drawdown, d.max_drawdown_in_day, d.open_positions
    from days d
    left join (
        select ledger, day, sum(trades) as trades, sum(wins) as wins, sum(net_pnl) as net_pnl, sum(fees) as fees
        from trades group by all
    ) t on t.ledger = d.ledger and t.day = d.day
)
select ledger, pair, day, trades, wins, net_pnl, fees,
    cast(null as double) as equity, cast(null as double) as daily_return, cast(null as double) as drawdown,
    cast(null as double) as max_drawdown_in_day, cast(null as integer) as open_positions
from trades
union all
select * from totals
