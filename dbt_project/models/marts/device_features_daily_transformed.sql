{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}delete from {{ this }}{% if var('gold_event_dates', none) is not none %} where feature_date in {{ gold_date_list('gold_feature_dates') }} or feature_date >= {{ feature_state_recompute_from() }}{% endif %}{% endif %}"
    )
}}

{%- set numeric_columns = feature_transform_numeric_columns() -%}
{%- set categorical_columns = feature_transform_categorical_columns() -%}

with

-- an incremental build recomputes gold_feature_dates, and every date from the earliest of them
-- inside the training window on (their fitted states changed)
features as (

    select * from {{ ref('device_features_daily') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where feature_date in {{ gold_date_list('gold_feature_dates') }}
        or feature_date >= {{ feature_state_recompute_from() }}
    {% endif %}

),

-- the attributes as of each row's feature_date (never later values)
device_attributes as (

    select * from {{ ref('device_attributes_daily') }}

),

transformer_state as (

    select * from {{ ref('feature_transformer_state') }}

),

-- the state each row is encoded with: the latest one fitted up to its feature_date (none for a
-- date before the training window: its encodings are null)
states as (

    select distinct fit_end_date, state_version
    from transformer_state

),

row_states as (

    select
        features.*,
        states.fit_end_date as state_date,
        states.state_version

    from features
    asof left join states
        on features.feature_date >= states.fit_end_date

),

-- one row per state: the fitted scaler parameters side by side
scalers as (

    select
        fit_end_date,
        {%- for column in numeric_columns %}
        max(case when transformer = 'standard_scaler' and feature = '{{ column }}' then mean end)
            as {{ column }}__mean,
        max(case when transformer = 'standard_scaler' and feature = '{{ column }}' then scale end)
            as {{ column }}__standard_scale,
        max(case when transformer = 'min_max_scaler' and feature = '{{ column }}' then data_min end)
            as {{ column }}__data_min,
        max(case when transformer = 'min_max_scaler' and feature = '{{ column }}' then scale end)
            as {{ column }}__min_max_scale{{ "," if not loop.last }}
        {%- endfor %}

    from transformer_state
    group by fit_end_date

),

{% for column in categorical_columns %}
{{ column }}__labels as (

    select fit_end_date, category, category_index
    from transformer_state
    where transformer = 'label_encoder' and feature = '{{ column }}' and not is_unknown_bucket

),

{{ column }}__one_hot as (

    select fit_end_date, category, category_index
    from transformer_state
    where transformer = 'one_hot_encoder' and feature = '{{ column }}' and not is_unknown_bucket

),

{{ column }}__unknown as (

    select
        fit_end_date,
        max(case when transformer = 'label_encoder' then category_index end) as label_index,
        max(case when transformer = 'one_hot_encoder' then category_index end) as one_hot_index,
        max(case when transformer = 'one_hot_encoder' then category_index end) + 1 as one_hot_width

    from transformer_state
    where feature = '{{ column }}' and is_unknown_bucket
    group by fit_end_date

),

{% endfor %}
final as (

    select
        features.appmetrica_device_id,
        features.feature_date,
        features.state_version,
        {%- for column in numeric_columns %}
        (cast(features.{{ column }} as double) - scalers.{{ column }}__mean) / scalers.{{ column }}__standard_scale
            as {{ column }}_standard,
        (cast(features.{{ column }} as double) - scalers.{{ column }}__data_min) / scalers.{{ column }}__min_max_scale
            as {{ column }}_min_max,
        {%- endfor %}
        {%- for column in categorical_columns %}
        coalesce({{ column }}__labels.category_index, {{ column }}__unknown.label_index) as {{ column }}_label,
        list_transform(
            range({{ column }}__unknown.one_hot_width),
            lambda slot: cast(
                slot = coalesce({{ column }}__one_hot.category_index, {{ column }}__unknown.one_hot_index)
                as utinyint
            )
        ) as {{ column }}_one_hot{{ "," if not loop.last }}
        {%- endfor %}

    from row_states as features
    left join scalers
        on features.state_date = scalers.fit_end_date
    left join device_attributes
        on features.appmetrica_device_id = device_attributes.appmetrica_device_id
        and features.feature_date = device_attributes.feature_date
    {%- for column in categorical_columns %}
    left join {{ column }}__unknown
        on features.state_date = {{ column }}__unknown.fit_end_date
    left join {{ column }}__labels
        on features.state_date = {{ column }}__labels.fit_end_date
        and device_attributes.{{ column }} = {{ column }}__labels.category
    left join {{ column }}__one_hot
        on features.state_date = {{ column }}__one_hot.fit_end_date
        and device_attributes.{{ column }} = {{ column }}__one_hot.category
    {%- endfor %}

)

select * from final
