select ledger || ':' || prediction_id as prediction_key, *
from ({{ ledger_scan('llm_decisions', {
    'id': 'bigint', 'prediction_id': 'bigint', 'pair': 'varchar', 'decided_at': 'timestamptz',
    'approver': 'varchar', 'source': 'varchar', 'verdict': 'varchar', 'cost_usd': 'double',
    'failure': 'varchar', 'clamps': 'varchar',
}) }})
