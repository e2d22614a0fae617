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


{% macro feature_fit_bound(var_name, env_name) %}
    {#-
        A training-window bound as a SQL date literal, or `null` when unset (= no bound).
        Taken from the dbt var `var_name` (`dbt build --vars '{...}'`), else from the environment
        variable `env_name`; it must be YYYY-MM-DD.
    -#}
    {%- set value = var(var_name, env_var(env_name, '')) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        null
    {%- else -%}
        {%- set text = value | string | trim -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
            {{ exceptions.raise_compiler_error(
                "dbt var " ~ var_name ~ " (or env " ~ env_name ~ ") must be a date YYYY-MM-DD, got '" ~ text ~ "'"
            ) }}
        {%- endif -%}
        date '{{ text }}'
    {%- endif -%}
{% endmacro %}
