select ledger || ':' || id as fill_key, ledger || ':' || client_order_id as order_key, *
from ({{ ledger_scan('fills', {
    'id': 'bigint', 'client_order_id': 'varchar', 'price': 'double', 'quantity': 'double', 'fee': 'double',
    'liquidity': 'varchar', 'filled_at': 'timestamptz',
}) }})
