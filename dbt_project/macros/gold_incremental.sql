{#-
    Incremental gold builds. transforms/gold.py passes, for a daily run (build_gold with
    changed_dates), the vars
      gold_silver_dates   export dates of the silver partitions to read (every partition holding
                          events of a date to recompute),
      gold_event_dates    event dates whose daily rows are recomputed,
      gold_feature_dates  feature dates whose feature rows are recomputed,
      gold_last_export_date  the latest export date in silver (the end of the calendar spine).
    Without them (a full build, run with --full-refresh) every model reads everything. Models test
    `is_incremental() and var('gold_event_dates', none) is not none` themselves, so that unit tests
    can override is_incremental.
-#}

{% macro gold_date_list(name) -%}
    {%- set dates = var(name, []) -%}
    {%- if dates | length == 0 -%}
        (select null::date where false)
    {%- else -%}
        ({% for d in dates %}date '{{ d }}'{{ ', ' if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}
