select ledger || ':' || prediction_id as prediction_key, *
from ({{ ledger_scan('decision_steps', {
    'id': 'bigint', 'prediction_id': 'bigint', 'position': 'integer', 'step': 'varchar',
    'approved': 'boolean', 'reason': 'varchar',
}) }})
