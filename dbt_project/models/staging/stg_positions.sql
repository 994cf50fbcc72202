select ledger || ':' || key as position_key, *
from ({{ ledger_scan('positions', {
    'id': 'bigint', 'key': 'varchar', 'prediction_id': 'bigint', 'pair': 'varchar', 'side': 'varchar',
    'status': 'varchar', 'quantity': 'double', 'entry_price': 'double', 'margin': 'double',
    'leverage': 'double', 'stop_loss_price': 'double', 'take_profit_price': 'double',
    'opened_at': 'timestamptz', 'deadline': 'timestamptz', 'entry_fee': 'double', 'exit_price': 'double',
    'closed_at': 'timestamptz', 'close_reason': 'varchar', 'exit_fee': 'double',
    'realised_pnl': 'double', 'reduced_pnl': 'double',
}) }})
