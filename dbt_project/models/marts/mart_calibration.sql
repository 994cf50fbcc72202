-- Live calibration: scored predictions in equal-width buckets of the predicted class's
-- probability, with the share that came true. A calibrated model's accuracy matches its mean
-- probability in every bucket. (`confidence` is the chain's rescaled figure, not a probability.)
{% set n = var('calibration_buckets') %}
select ledger, model_version, pair,
    least(floor(probability * {{ n }}), {{ n }} - 1) / {{ n }} as bucket_low,
    (least(floor(probability * {{ n }}), {{ n }} - 1) + 1) / {{ n }} as bucket_high,
    count(*) as predictions,
    avg(probability) as mean_probability,
    avg(case when correct then 1.0 else 0.0 end) as accuracy
from {{ ref('fct_decisions') }}
where correct is not null and probability between 0 and 1
group by all
