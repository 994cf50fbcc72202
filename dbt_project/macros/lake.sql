{#- A source in the lake, with typed columns, or no rows when it has no files yet. A fresh clone
    has no lake and no ledger export: the marts are then empty and the log says why, where
    read_parquet would fail the whole build. -#}
{% macro lake_scan(relation, pattern, columns) -%}
  {%- set present = lake_has_files(pattern) -%}
  {%- if not present -%}
    {{ log("helios: no files match " ~ lake_root() ~ "/" ~ pattern ~ ": " ~ relation.identifier ~ " is empty", info=true) }}
  {%- endif -%}
  select
  {%- for name, type in columns.items() %}
    cast({{ name if present else 'null' }} as {{ type }}) as {{ name }}{{ "," if not loop.last }}
  {%- endfor %}
  {% if present -%} from {{ relation }} {%- else -%} where false {%- endif %}
{%- endmacro %}

{% macro lake_has_files(pattern) -%}
  {%- if not execute -%}{{ return(true) }}{%- endif -%}
  {%- set found = run_query("select count(*) from glob('" ~ lake_root() ~ "/" ~ pattern ~ "')") -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- The ledger's columns of one exported table; `ledger` names the ledger it came from. -#}
{% macro ledger_scan(table, columns) -%}
  {%- set typed = {'ledger': 'varchar'} -%}
  {%- do typed.update(columns) -%}
  {{ lake_scan(source('ledger', table), 'ledger/' ~ table ~ '/*/data.parquet', typed) }}
{%- endmacro %}

{#- Annualised Sharpe of a column of periodic returns; null with fewer than two or no spread. -#}
{% macro sharpe(returns) -%}
  case when count({{ returns }}) > 1 and stddev_samp({{ returns }}) > 1e-12
       then avg({{ returns }}) / stddev_samp({{ returns }}) * sqrt({{ var('periods_per_year') }}) end
{%- endmacro %}

{#- Sortino: downside deviation over every period (zero above zero), as helios_core.evaluation. -#}
{% macro sortino(returns) -%}
  case when count({{ returns }}) > 1 and sqrt(avg(power(least({{ returns }}, 0), 2))) > 1e-12
       then avg({{ returns }}) / sqrt(avg(power(least({{ returns }}, 0), 2))) * sqrt({{ var('periods_per_year') }}) end
{%- endmacro %}

{#- The lake: absolute in every Dagster run (HELIOS_LAKE_ROOT from the settings); the default is
    the Makefile's home as seen from this folder, for `dbt build` by hand. Also in sources.yml. -#}
{% macro lake_root() -%}
  {{ return(env_var('HELIOS_LAKE_ROOT', '../.helios/lake')) }}
{%- endmacro %}
