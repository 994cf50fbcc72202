-- Candles present against candles expected, per pair, timeframe and day, between each series'
-- first and last candle (a day the data starts or ends in expects only its covered part).
with candles as (
    select pair, timeframe, ts,
        case right(timeframe, 1)
            when 'm' then 60 when 'h' then 3600 when 'd' then 86400
        end * cast(left(timeframe, length(timeframe) - 1) as integer) as step_s
    from {{ ref('stg_candles') }}
),
series as (
    select pair, timeframe, step_s, min(ts) as first_ts, max(ts) as last_ts from candles group by all
),
days as (
    select s.*, cast(d.day as date) as day
    from series s, range(cast(s.first_ts as date), cast(s.last_ts as date) + 1, interval 1 day) d(day)
),
expected as (
    select pair, timeframe, day, step_s,
        floor(date_diff('second',
            greatest(first_ts, cast(day as timestamptz)),
            least(last_ts + to_seconds(step_s), cast(day as timestamptz) + interval 1 day)
        ) / step_s) as expected
    from days
),
present as (
    select pair, timeframe, cast(ts as date) as day, count(distinct ts) as present
    from candles group by all
)
select e.pair, e.timeframe, e.day, cast(e.expected as bigint) as expected,
    coalesce(p.present, 0) as present,
    case when e.expected > 0 then coalesce(p.present, 0) / e.expected end as coverage
from expected e
left join present p using (pair, timeframe, day)
