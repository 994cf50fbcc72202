-- One row per closed position. P&L is taken twice, independently: `net_pnl` as the ledger's
-- account booked it, and `gross_pnl` / `fees` rebuilt from the fills (tests/assert_fills_reconcile).
with fills as (
    select
        o.ledger,
        o.position_key,
        sum(case when o.purpose = 'OPEN' then f.quantity else 0 end) as opened_quantity,
        sum(case when o.purpose <> 'OPEN' then f.quantity else 0 end) as closed_quantity,
        sum(case when o.purpose = 'OPEN' then -1 else 1 end * f.price * f.quantity) as cash_flow,
        sum(f.fee) as fees,
        count(*) as fills,
        count(case when o.purpose = 'REDUCE' then 1 end) as trims
    from {{ ref('stg_orders') }} o
    join {{ ref('stg_fills') }} f on f.order_key = o.order_key
    group by o.ledger, o.position_key
),
approvals as (
    select prediction_key, verdict, approver
    from {{ ref('stg_llm_decisions') }}
    qualify row_number() over (partition by prediction_key order by decided_at desc, id desc) = 1
),
approval_steps as (
    select prediction_key, reason
    from {{ ref('stg_decision_steps') }}
    where step = 'approval'
)
select
    p.position_key as trade_id,
    p.ledger,
    p.key as position_key,
    p.pair,
    p.side,
    pr.model_version,
    p.opened_at as entry_at,
    p.entry_price,
    p.closed_at as exit_at,
    p.exit_price,
    f.opened_quantity as quantity,
    f.closed_quantity,
    p.leverage,
    date_diff('millisecond', p.opened_at, p.closed_at) / 1000.0 as holding_s,
    case when p.side = 'LONG' then 1 else -1 end * f.cash_flow as gross_pnl,
    f.fees,
    p.realised_pnl as net_pnl,
    p.realised_pnl > 0 as won,
    f.fills,
    f.trims,
    coalesce(a.verdict, split_part(s.reason, ' ', 1), 'none') as approval_outcome,
    coalesce(a.approver, nullif(regexp_extract(s.reason, ' by ([^:]+)', 1), '')) as approver,
    p.close_reason
from {{ ref('stg_positions') }} p
join fills f on f.ledger = p.ledger and f.position_key = p.key
left join {{ ref('stg_predictions') }} pr on pr.prediction_key = p.ledger || ':' || p.prediction_id
left join approvals a on a.prediction_key = pr.prediction_key
left join approval_steps s on s.prediction_key = pr.prediction_key
where p.status = 'CLOSED'
