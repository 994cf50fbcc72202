{{ config(materialized='table') }}
-- Per pair, base timeframe, day and feature: how many rows carry a value. The 90 columns are
-- unpivoted, so a feature added to the set needs no change here.
{% if lake_has_files('features/*/*/*.parquet') %}
-- UNPIVOT drops nulls: a missing value becomes NaN first, so it is counted and not valid.
with wide as (
    select cast(ts as timestamptz) as ts, pair, timeframe,
        coalesce(cast(columns(* exclude (ts, t, pair, timeframe)) as double), cast('NaN' as double))
    from {{ source('lake', 'features') }}
),
long as (
    unpivot wide
    on columns(* exclude (ts, pair, timeframe))
    into name feature value value
)
select
    pair,
    timeframe,
    cast(ts as date) as day,
    feature,
    count(*) as rows,
    count(case when isfinite(cast(value as double)) then 1 end) as valid,
    count(case when isfinite(cast(value as double)) then 1 end) / count(*) as valid_share
from long
group by pair, timeframe, cast(ts as date), feature
{% else %}
{{ log("helios: no features in the lake: stg_feature_stats is empty", info=true) }}
select
    cast(null as varchar) as pair, cast(null as varchar) as timeframe, cast(null as date) as day,
    cast(null as varchar) as feature, cast(null as bigint) as rows, cast(null as bigint) as valid,
    cast(null as double) as valid_share
where false
{% endif %}
