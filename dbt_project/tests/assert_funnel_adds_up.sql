{{ config(meta={'dagster': {'ref': {'name': 'mart_decision_funnel'}}}) }}
-- The funnel accounts for every decision once.
select f.ledger, f.decisions, d.decisions as expected
from (select ledger, sum(decisions) as decisions from {{ ref('mart_decision_funnel') }} group by ledger) f
full join (select ledger, count(*) as decisions from {{ ref('fct_decisions') }} group by ledger) d using (ledger)
where f.decisions is distinct from d.decisions
