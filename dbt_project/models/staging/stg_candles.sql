{{ lake_scan(source('lake', 'candles'), 'candles/*/*/*.parquet', {
    'pair': 'varchar', 'timeframe': 'varchar', 'ts': 'timestamptz',
    'open': 'double', 'high': 'double', 'low': 'double', 'close': 'double', 'volume': 'double',
}) }}
