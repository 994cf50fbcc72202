select ledger || ':' || id as prediction_key, *
from ({{ ledger_scan('predictions', {
    'id': 'bigint', 'pair': 'varchar', 'candle_ts': 'timestamptz', 'decided_at': 'timestamptz',
    'model_version': 'varchar', 'prediction': 'varchar', 'p_buy': 'double', 'p_sell': 'double',
    'p_hold': 'double', 'confidence': 'double', 'entry_price': 'double', 'outcome_due': 'timestamptz',
    'actual_outcome': 'varchar', 'outcome_return': 'double', 'correct': 'boolean', 'latency_ms': 'double',
}) }})
