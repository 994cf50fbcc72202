-- Section 53.3 of the design over the last go_live_days of each ledger (ending on its last
-- day, or on the var go_live_end): accuracy, win rate, Sharpe and max drawdown, each with its
-- value, its threshold and pass or fail, and a `go_live` row that passes only when all four do.
-- A criterion without data (no scored prediction, no trade, fewer than two days) fails.
{% set days = var('go_live_days') %}
with ends as (
    select ledger,
        {{ "cast('" ~ var('go_live_end') ~ "' as date)" if var('go_live_end', none) else 'max(day)' }} as window_end
    from {{ ref('mart_daily_pnl') }} where pair = 'TOTAL'
    group by ledger
),
windows as (
    select ledger, window_end - interval {{ days }} day as after_day, window_end from ends
),
accuracy as (
    select w.ledger, avg(case when d.correct then 1.0 else 0.0 end) as value, count(d.correct) as n
    from windows w
    left join {{ ref('fct_decisions') }} d
        on d.ledger = w.ledger and d.correct is not null
        and cast(d.decided_at as date) > w.after_day and cast(d.decided_at as date) <= w.window_end
    group by all
),
trades as (
    select w.ledger, avg(case when t.won then 1.0 else 0.0 end) as value, count(t.trade_id) as n
    from windows w
    left join {{ ref('fct_trades') }} t
        on t.ledger = w.ledger and cast(t.exit_at as date) > w.after_day and cast(t.exit_at as date) <= w.window_end
    group by all
),
daily as (
    select w.ledger, {{ sharpe('p.daily_return') }} as sharpe, max(p.max_drawdown_in_day) as max_drawdown,
        count(p.daily_return) as n
    from windows w
    join {{ ref('mart_daily_pnl') }} p
        on p.ledger = w.ledger and p.pair = 'TOTAL' and p.day > w.after_day and p.day <= w.window_end
    group by all
),
criteria as (
    select ledger, 1 as position, 'accuracy' as criterion, value, {{ var('go_live_min_accuracy') }} as threshold,
        '>' as comparison, n as observations, 'scored predictions' as observed
    from accuracy
    union all
    select ledger, 2, 'win_rate', value, {{ var('go_live_min_win_rate') }}, '>', n, 'closed trades' from trades
    union all
    select ledger, 3, 'sharpe', case when n > 1 then sharpe end, {{ var('go_live_min_sharpe') }}, '>', n, 'daily returns'
    from daily
    union all
    select ledger, 4, 'max_drawdown', max_drawdown, {{ var('go_live_max_drawdown') }}, '<', n, 'days' from daily
),
judged as (
    select c.* replace (cast(c.threshold as double) as threshold, cast(c.value as double) as value), w.after_day + interval 1 day as window_start, w.window_end,
        coalesce(case when c.comparison = '>' then c.value > c.threshold else c.value < c.threshold end, false) as passed,
        case when c.value is null then 'not enough data in the window' end as note
    from criteria c join windows w using (ledger)
)
select ledger, cast(window_start as date) as window_start, window_end, position, criterion, value, threshold,
    comparison, observations, observed, passed, note
from judged
union all
select ledger, cast(min(window_start) as date), min(window_end), 5, 'go_live', cast(count(case when passed then 1 end) as double), 4.0,
    '>=', count(*), 'criteria', bool_and(passed) and count(*) = 4,
    case when not bool_and(passed) then 'failed: ' || string_agg(case when not passed then criterion end, ', ' order by position) end
from judged
group by ledger
