select ledger || ':' || id as snapshot_key, * exclude ("at"), "at" as snapshot_at
from ({{ ledger_scan('portfolio_snapshots', {
    'id': 'bigint', '"at"': 'timestamptz', 'cash': 'double', 'margin': 'double', 'unrealised': 'double',
    'equity': 'double', 'peak': 'double', 'drawdown': 'double', 'open_positions': 'integer', 'reason': 'varchar',
}) }})
