-- One row per decision (a prediction on a closed candle) with the step where its chain ended:
-- the first denial, or `execution` when an order was placed.
with steps as (
    select s.*, t.stage_order, t.tier, t.tier_name
    from {{ ref('stg_decision_steps') }} s
    left join {{ ref('decision_tiers') }} t on t.step = s.step
),
last_step as (
    select *
    from steps
    qualify row_number() over (partition by prediction_key order by position desc) = 1
)
select
    p.prediction_key,
    p.ledger,
    p.id as prediction_id,
    p.pair,
    p.candle_ts,
    p.decided_at,
    p.model_version,
    p.prediction,
    p.confidence,
    greatest(p.p_buy, p.p_sell, p.p_hold) as probability,
    p.correct,
    coalesce(l.step, 'unrecorded') as ended_at_step,
    l.stage_order,
    l.tier,
    coalesce(l.tier_name, 'no step recorded') as tier_name,
    coalesce(l.approved, false) and l.step = 'execution' as executed,
    case
        when l.step is null then 'no step recorded'
        when l.approved and l.step = 'execution' then 'order placed'
        when l.approved then 'chain ended without a denial before execution'
        else l.reason
    end as reason
from {{ ref('stg_predictions') }} p
left join last_step l on l.prediction_key = p.prediction_key
