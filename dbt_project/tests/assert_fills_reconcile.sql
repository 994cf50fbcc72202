{{ config(meta={'dagster': {'ref': {'name': 'fct_trades'}}}) }}
-- Every closed position's fills add up: what was bought is what was sold (trims included), and
-- the P&L rebuilt from the fills' prices and fees is the P&L the account booked.
select trade_id, quantity, closed_quantity, gross_pnl, fees, net_pnl
from {{ ref('fct_trades') }}
where abs(quantity - closed_quantity) > 1e-9 * greatest(1, abs(quantity))
   or abs(gross_pnl - fees - net_pnl) > {{ var('money_tolerance') }}
