-- Where each ledger's decisions ended, per step of the chain and reason (numbers in a reason are
-- replaced by '#' and position keys by '<key>', so "confidence 0.144 below 0.40" and "... 0.151 ..." count together).
-- The rows of a ledger add up to its decisions; `reached` is how many got to the step at all.
with ended as (
    select ledger, ended_at_step as step, stage_order, tier, tier_name, executed,
        regexp_replace(
            regexp_replace(reason, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<key>', 'g'),
            '[0-9]+(\.[0-9]+)?', '#', 'g'
        ) as reason
    from {{ ref('fct_decisions') }}
),
counted as (
    select ledger, step, stage_order, tier, tier_name,
        case when executed then 'executed' else 'stopped' end as outcome,
        reason, count(*) as decisions
    from ended
    group by all
),
per_step as (
    select ledger, stage_order, sum(decisions) as ended_here
    from counted group by all
)
select c.*,
    (select sum(p.ended_here) from per_step p where p.ledger = c.ledger and p.stage_order >= c.stage_order) as reached
from counted c
