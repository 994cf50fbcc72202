{{ config(meta={'dagster': {'ref': {'name': 'stg_candles'}}}) }}
-- A candle's high is at least its low, its open and its close.
select pair, timeframe, ts, open, high, low, close
from {{ ref('stg_candles') }}
where high < low or high < greatest(open, close) or low > least(open, close)
