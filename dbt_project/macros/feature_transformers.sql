{#-
    Configuration of the fitted feature transformers (feature_transformer_state and
    device_features_daily_transformed). The column lists are fixed here, not dbt vars, because
    both models enforce a contract: adding a feature means adding its columns to the YAML too.
-#}

{% macro feature_transform_numeric_columns() %}
    {#- integer features of device_features_daily, scaled by standard_scaler and min_max_scaler -#}
    {{ return([
        'events_1d', 'events_7d', 'events_28d', 'sessions_7d', 'active_days_28d',
        'days_since_first_seen', 'days_since_last_event',
    ]) }}
{% endmacro %}


{% macro feature_transform_categorical_columns() %}
    {#- attributes of device_attributes_daily (as of feature_date), encoded by label_encoder and one_hot_encoder -#}
    {{ return(['os_name', 'device_type', 'country_iso_code']) }}
{% endmacro %}


{% macro feature_fit_bound_text(var_name, env_name) %}
    {#-
        A training-window bound as YYYY-MM-DD text, or none when unset (= no bound). Taken from
        the dbt var `var_name` (`dbt build --vars '{...}'`), else from the environment variable
        `env_name`; anything but YYYY-MM-DD stops the build naming both.
    -#}
    {%- set value = var(var_name, env_var(env_name, '')) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error(
            "dbt var " ~ var_name ~ " (or env " ~ env_name ~ ") must be a date YYYY-MM-DD, got '" ~ text ~ "'"
        ) }}
    {%- endif -%}
    {{ return(text) }}
{% endmacro %}


{% macro feature_fit_bound(var_name, env_name) %}
    {#- a training-window bound as a SQL date literal, or `null` when unset (= no bound) -#}
    {%- set text = feature_fit_bound_text(var_name, env_name) -%}
    {%- if text is none -%} null {%- else -%} date '{{ text }}' {%- endif -%}
{% endmacro %}


{% macro feature_state_recompute_from() %}
    {#-
        For an incremental build (gold_feature_dates set): the earliest recomputed feature date
        inside the configured training window, as a SQL date, or `null` when none is. The fitted
        state as of that date and of every later date changes (each is fitted on the window's
        rows up to its own date); the states of earlier dates, and the rows encoded with them, do
        not. Dates after the window's end all use the state of its last date.
    -#}
    {%- set start = feature_fit_bound_text('feature_fit_start_date', 'LAKEHOUSE_FEATURE_FIT_START') -%}
    {%- set end = feature_fit_bound_text('feature_fit_end_date', 'LAKEHOUSE_FEATURE_FIT_END') -%}
    {%- set inside = [] -%}
    {%- for d in var('gold_feature_dates', []) | sort -%}
        {%- if (start is none or d >= start) and (end is none or d <= end) -%}
            {%- do inside.append(d) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if inside | length == 0 -%} cast(null as date) {%- else -%} date '{{ inside[0] }}' {%- endif -%}
{% endmacro %}
