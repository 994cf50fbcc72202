-- Per ledger, model version and pair: accuracy over every scored prediction and over the last
-- 100, the hit rate of the BUY and SELL calls, the expected calibration error of the probability,
-- and what the trades the model opened made.
with scored as (
    select *, row_number() over (partition by ledger, model_version, pair order by decided_at desc, prediction_id desc) as recent
    from {{ ref('fct_decisions') }}
    where correct is not null
),
predictions as (
    select ledger, model_version, pair,
        count(*) as predictions,
        count(correct) as scored,
        avg(confidence) as mean_confidence
    from {{ ref('fct_decisions') }}
    group by all
),
accuracy as (
    select ledger, model_version, pair,
        avg(case when correct then 1.0 else 0.0 end) as accuracy,
        avg(case when recent <= 100 then case when correct then 1.0 else 0.0 end end) as accuracy_last_100,
        count(case when recent <= 100 then 1 end) as last_100_scored,
        avg(case when prediction <> 'HOLD' then case when correct then 1.0 else 0.0 end end) as hit_rate,
        count(case when prediction <> 'HOLD' then 1 end) as calls_scored
    from scored
    group by all
),
calibration as (
    select ledger, model_version, pair,
        sum(predictions * abs(accuracy - mean_probability)) / sum(predictions) as calibration_error
    from {{ ref('mart_calibration') }}
    group by all
),
trades as (
    select ledger, model_version, pair, count(*) as trades,
        avg(case when won then 1.0 else 0.0 end) as win_rate, sum(net_pnl) as net_pnl
    from {{ ref('fct_trades') }}
    group by all
)
select p.ledger, p.model_version, p.pair, p.predictions, p.scored, p.mean_confidence,
    a.accuracy, a.accuracy_last_100, coalesce(a.last_100_scored, 0) as last_100_scored,
    a.hit_rate, coalesce(a.calls_scored, 0) as calls_scored, c.calibration_error,
    coalesce(t.trades, 0) as trades, t.win_rate, coalesce(t.net_pnl, 0) as net_pnl
from predictions p
left join accuracy a using (ledger, model_version, pair)
left join calibration c using (ledger, model_version, pair)
left join trades t using (ledger, model_version, pair)
