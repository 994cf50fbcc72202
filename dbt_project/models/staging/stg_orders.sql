select ledger || ':' || client_order_id as order_key, ledger || ':' || position_key as position_key_full, *
from ({{ ledger_scan('orders', {
    'id': 'bigint', 'client_order_id': 'varchar', 'position_key': 'varchar', 'pair': 'varchar',
    'side': 'varchar', 'purpose': 'varchar', 'mode': 'varchar', 'quantity': 'double', 'status': 'varchar',
    'created_at': 'timestamptz',
}) }})
