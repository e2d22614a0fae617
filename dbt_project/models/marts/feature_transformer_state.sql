{%- set numeric_columns = feature_transform_numeric_columns() -%}
{%- set categorical_columns = feature_transform_categorical_columns() -%}

with

features as (

    select * from {{ ref('device_features_daily') }}

),

device_attributes as (

    select * from {{ ref('device_attributes_daily') }}

),

-- the training window: vars feature_fit_start_date / feature_fit_end_date (inclusive), each
-- defaulting to the earliest / latest feature_date
window_bounds as (

    select
        coalesce({{ feature_fit_bound('feature_fit_start_date', 'LAKEHOUSE_FEATURE_FIT_START') }}, min(feature_date))
            as fit_start_date,
        coalesce({{ feature_fit_bound('feature_fit_end_date', 'LAKEHOUSE_FEATURE_FIT_END') }}, max(feature_date))
            as fit_end_date

    from features

),

checked_bounds as (

    select
        fit_start_date,
        fit_end_date,
        case
            when fit_start_date > fit_end_date
                then error(
                    'feature transformer training window is empty: feature_fit_start_date '
                    || fit_start_date || ' is after feature_fit_end_date ' || fit_end_date
                )
        end as bounds_error

    from window_bounds

),

fit_rows as (

    select features.*

    from features
    inner join checked_bounds
        on features.feature_date between checked_bounds.fit_start_date and checked_bounds.fit_end_date
        -- references bounds_error so that the check is evaluated
        and checked_bounds.bounds_error is null

),

numeric_values as (

    unpivot (select {{ numeric_columns | join(', ') }} from fit_rows)
    on {{ numeric_columns | join(', ') }}
    into name feature value feature_value

),

-- exact integer sums (HUGEINT): the statistics do not depend on summation order or threads, so
-- a rebuild fits bit-identical parameters; var_pop = (n * sum(x^2) - sum(x)^2) / n^2
numeric_sums as (

    select
        feature,
        count(*) as fit_rows,
        sum(cast(feature_value as hugeint)) as sum_x,
        sum(cast(feature_value as hugeint) * cast(feature_value as hugeint)) as sum_x2,
        min(feature_value) as data_min,
        max(feature_value) as data_max

    from numeric_values
    group by feature

),

numeric_stats as (

    select
        feature,
        fit_rows,
        cast(sum_x as double) / fit_rows as mean,
        sqrt(cast(fit_rows * sum_x2 - sum_x * sum_x as double)) / fit_rows as std,
        cast(data_min as double) as data_min,
        cast(data_max as double) as data_max

    from numeric_sums

),

-- StandardScaler: (x - mean) / scale, scale = population std, or 1 for a constant column
standard_scaler as (

    select
        'standard_scaler' as transformer,
        'device_features_daily' as source_model,
        feature,
        cast(null as varchar) as category,
        cast(null as bigint) as category_index,
        false as is_unknown_bucket,
        cast(null as bigint) as category_rows,
        mean,
        std,
        data_min,
        data_max,
        case when std > 0 then std else 1.0 end as scale,
        fit_rows

    from numeric_stats

),

-- MinMaxScaler: (x - data_min) / scale, scale = data_max - data_min, or 1 for a constant column
min_max_scaler as (

    select
        'min_max_scaler' as transformer,
        'device_features_daily' as source_model,
        feature,
        cast(null as varchar) as category,
        cast(null as bigint) as category_index,
        false as is_unknown_bucket,
        cast(null as bigint) as category_rows,
        mean,
        std,
        data_min,
        data_max,
        case when data_max > data_min then data_max - data_min else 1.0 end as scale,
        fit_rows

    from numeric_stats

),

-- the encoders are fitted on the attributes as of each feature row of the window (the same
-- rows as the scalers), never on values sent after a row's feature_date
fit_attributes as (

    select
        device_attributes.appmetrica_device_id,
        device_attributes.feature_date,
        {{ categorical_columns | join(',\n        ') }}

    from device_attributes
    inner join fit_rows
        on device_attributes.appmetrica_device_id = fit_rows.appmetrica_device_id
        and device_attributes.feature_date = fit_rows.feature_date

),

categorical_features as (

    select * from (
        values {% for column in categorical_columns %}('{{ column }}'){{ ", " if not loop.last }}{% endfor %}
    ) as configured (feature)

),

category_values as (

    unpivot (select {{ categorical_columns | join(', ') }} from fit_attributes)
    on {{ categorical_columns | join(', ') }}
    into name feature value category

),

-- categories in sorted (code point) order, numbered from 0; nulls are not a category
categories as (

    select
        feature,
        category,
        count(*) as category_rows,
        row_number() over (partition by feature order by category) - 1 as category_index

    from category_values
    group by feature, category

),

category_counts as (

    select
        categorical_features.feature,
        (select count(*) from fit_attributes) as fit_rows,
        count(categories.category) as categories_count

    from categorical_features
    left join categories
        on categorical_features.feature = categories.feature
    group by categorical_features.feature

),

encoder_rows as (

    select
        encoder.transformer,
        categories.feature,
        categories.category,
        categories.category_index,
        false as is_unknown_bucket,
        categories.category_rows

    from categories
    cross join (values ('label_encoder'), ('one_hot_encoder')) as encoder (transformer)

    union all

    -- the unknown bucket: categories not seen in the window, and nulls; label -1, and the last
    -- slot of the one-hot vector
    select
        encoder.transformer,
        category_counts.feature,
        cast(null as varchar) as category,
        case when encoder.transformer = 'label_encoder' then -1 else category_counts.categories_count end
            as category_index,
        true as is_unknown_bucket,
        category_counts.fit_rows - coalesce(
            (select sum(categories.category_rows) from categories where categories.feature = category_counts.feature),
            0
        ) as category_rows

    from category_counts
    cross join (values ('label_encoder'), ('one_hot_encoder')) as encoder (transformer)

),

encoders as (

    select
        encoder_rows.transformer,
        'device_attributes_daily' as source_model,
        encoder_rows.feature,
        encoder_rows.category,
        cast(encoder_rows.category_index as bigint) as category_index,
        encoder_rows.is_unknown_bucket,
        cast(encoder_rows.category_rows as bigint) as category_rows,
        cast(null as double) as mean,
        cast(null as double) as std,
        cast(null as double) as data_min,
        cast(null as double) as data_max,
        cast(null as double) as scale,
        category_counts.fit_rows

    from encoder_rows
    inner join category_counts
        on encoder_rows.feature = category_counts.feature

),

state_rows as (

    select * from standard_scaler
    union all
    select * from min_max_scaler
    union all
    select * from encoders

),

-- the version is a hash of everything fitted (parameters, categories, window, counts)
state_version as (

    select
        md5(string_agg(
            concat_ws(
                '|', state_rows.transformer, state_rows.feature, coalesce(state_rows.category, '<null>'),
                state_rows.category_index, state_rows.is_unknown_bucket, state_rows.category_rows,
                state_rows.mean, state_rows.std, state_rows.data_min, state_rows.data_max, state_rows.scale,
                state_rows.fit_rows, checked_bounds.fit_start_date, checked_bounds.fit_end_date
            ),
            chr(10)
            order by state_rows.transformer, state_rows.feature, state_rows.category_index
        )) as state_version

    from state_rows
    cross join checked_bounds

),

final as (

    select
        state_version.state_version,
        state_rows.transformer,
        state_rows.source_model,
        state_rows.feature,
        state_rows.category,
        state_rows.category_index,
        state_rows.is_unknown_bucket,
        state_rows.category_rows,
        state_rows.mean,
        state_rows.std,
        state_rows.data_min,
        state_rows.data_max,
        state_rows.scale,
        checked_bounds.fit_start_date,
        checked_bounds.fit_end_date,
        cast(state_rows.fit_rows as bigint) as fit_rows

    from state_rows
    cross join checked_bounds
    cross join state_version

)

select * from final
