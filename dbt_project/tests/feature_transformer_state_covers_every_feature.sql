{#-
    Fails with one row per configured (transformer, feature) that has no fitted state, or whose
    state was fitted on no rows: an empty training window (dbt vars feature_fit_start_date /
    feature_fit_end_date) must stop the build, not publish transformers fitted on nothing.
-#}

with

expected as (

    {%- for column in feature_transform_numeric_columns() %}
    select 'standard_scaler' as transformer, '{{ column }}' as feature
    union all
    select 'min_max_scaler', '{{ column }}'
    union all
    {%- endfor %}
    {%- for column in feature_transform_categorical_columns() %}
    select 'label_encoder', '{{ column }}'
    union all
    select 'one_hot_encoder', '{{ column }}'{{ "\n    union all" if not loop.last }}
    {%- endfor %}

),

fitted as (

    select transformer, feature, min(fit_rows) as fit_rows
    from {{ ref('feature_transformer_state') }}
    group by transformer, feature

),

final as (

    select expected.transformer, expected.feature, fitted.fit_rows
    from expected
    left join fitted
        on expected.transformer = fitted.transformer
        and expected.feature = fitted.feature
    where coalesce(fitted.fit_rows, 0) < 1

)

select * from final
