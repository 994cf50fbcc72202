{{ lake_scan(source('lake', 'labels'), 'labels/*/*/*.parquet', {
    'pair': 'varchar', 'timeframe': 'varchar', 'ts': 'timestamptz',
    'fwd_return': 'double', 'label': 'integer', 'barrier_label': 'integer',
}) }}
