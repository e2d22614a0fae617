{%- set numeric_columns = feature_transform_numeric_columns() -%}
{%- set categorical_columns = feature_transform_categorical_columns() -%}

with

features as (

    select * from {{ ref('device_features_daily') }}

),

-- the attributes as of each row's feature_date (never later values)
device_attributes as (

    select * from {{ ref('device_attributes_daily') }}

),

transformer_state as (

    select * from {{ ref('feature_transformer_state') }}

),

-- one row: the fitted scaler parameters side by side
scalers as (

    select
        max(state_version) as state_version,
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

),

{% for column in categorical_columns %}
{{ column }}__labels as (

    select category, category_index
    from transformer_state
    where transformer = 'label_encoder' and feature = '{{ column }}' and not is_unknown_bucket

),

{{ column }}__one_hot as (

    select category, category_index
    from transformer_state
    where transformer = 'one_hot_encoder' and feature = '{{ column }}' and not is_unknown_bucket

),

{{ column }}__unknown as (

    select
        max(case when transformer = 'label_encoder' then category_index end) as label_index,
        max(case when transformer = 'one_hot_encoder' then category_index end) as one_hot_index,
        max(case when transformer = 'one_hot_encoder' then category_index end) + 1 as one_hot_width

    from transformer_state
    where feature = '{{ column }}' and is_unknown_bucket

),

{% endfor %}
final as (

    select
        features.appmetrica_device_id,
        features.feature_date,
        scalers.state_version,
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

    from features
    cross join scalers
    left join device_attributes
        on features.appmetrica_device_id = device_attributes.appmetrica_device_id
        and features.feature_date = device_attributes.feature_date
    {%- for column in categorical_columns %}
    cross join {{ column }}__unknown
    left join {{ column }}__labels
        on device_attributes.{{ column }} = {{ column }}__labels.category
    left join {{ column }}__one_hot
        on device_attributes.{{ column }} = {{ column }}__one_hot.category
    {%- endfor %}

)

select * from final
