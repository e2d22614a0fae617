{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}delete from {{ this }}{% if var('gold_event_dates', none) is not none %} where fit_end_date >= {{ feature_state_recompute_from() }}{% endif %}{% endif %}"
    )
}}

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

-- one state per feature_date of the window (its fit_end_date), fitted on the window's rows dated
-- up to and including it: the state that encodes a date never holds a later row
state_dates as (

    select
        feature_date as fit_end_date,
        count(*) as date_rows,
        sum(count(*)) over (order by feature_date rows between unbounded preceding and current row) as fit_rows

    from fit_rows
    group by feature_date

),

numeric_values as (

    unpivot (select feature_date, {{ numeric_columns | join(', ') }} from fit_rows)
    on {{ numeric_columns | join(', ') }}
    into name feature value feature_value

),

-- exact integer sums (HUGEINT), per date and then running over the dates: the statistics do not
-- depend on summation order or threads, so a rebuild fits bit-identical parameters;
-- var_pop = (n * sum(x^2) - sum(x)^2) / n^2
numeric_daily as (

    select
        feature,
        feature_date,
        count(*) as date_rows,
        sum(cast(feature_value as hugeint)) as sum_x,
        sum(cast(feature_value as hugeint) * cast(feature_value as hugeint)) as sum_x2,
        min(feature_value) as data_min,
        max(feature_value) as data_max

    from numeric_values
    group by feature, feature_date

),

numeric_sums as (

    select
        feature,
        feature_date as fit_end_date,
        sum(date_rows) over running as fit_rows,
        sum(sum_x) over running as sum_x,
        sum(sum_x2) over running as sum_x2,
        min(data_min) over running as data_min,
        max(data_max) over running as data_max

    from numeric_daily
    window running as (partition by feature order by feature_date rows between unbounded preceding and current row)

),

numeric_stats as (

    select
        feature,
        fit_end_date,
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
        fit_end_date,
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
        fit_end_date,
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

    unpivot (select feature_date, {{ categorical_columns | join(', ') }} from fit_attributes)
    on {{ categorical_columns | join(', ') }}
    into name feature value category

),

category_daily as (

    select feature, category, feature_date, count(*) as date_rows
    from category_values
    group by feature, category, feature_date

),

-- a category's index is fixed once it is seen: categories in the order of the first date they
-- appear in the window, those of the same date in sorted (code point) order, numbered from 0;
-- a later category takes the next index and never moves an earlier one; nulls are not a category
categories as (

    select
        feature,
        category,
        min(feature_date) as first_seen_date,
        row_number() over (partition by feature order by min(feature_date), category) - 1 as category_index

    from category_daily
    group by feature, category

),

-- each state holds the categories first seen on or before its date, with their rows up to it
category_states as (

    select
        state_dates.fit_end_date,
        categories.feature,
        categories.category,
        categories.category_index,
        sum(coalesce(category_daily.date_rows, 0)) over (
            partition by categories.feature, categories.category
            order by state_dates.fit_end_date
            rows between unbounded preceding and current row
        ) as category_rows

    from categories
    inner join state_dates
        on categories.first_seen_date <= state_dates.fit_end_date
    left join category_daily
        on categories.feature = category_daily.feature
        and categories.category = category_daily.category
        and state_dates.fit_end_date = category_daily.feature_date

),

category_counts as (

    select
        state_dates.fit_end_date,
        categorical_features.feature,
        state_dates.fit_rows,
        count(category_states.category) as categories_count,
        coalesce(sum(category_states.category_rows), 0) as category_rows

    from state_dates
    cross join categorical_features
    left join category_states
        on state_dates.fit_end_date = category_states.fit_end_date
        and categorical_features.feature = category_states.feature
    group by state_dates.fit_end_date, categorical_features.feature, state_dates.fit_rows

),

encoder_rows as (

    select
        category_states.fit_end_date,
        encoder.transformer,
        category_states.feature,
        category_states.category,
        category_states.category_index,
        false as is_unknown_bucket,
        category_states.category_rows

    from category_states
    cross join (values ('label_encoder'), ('one_hot_encoder')) as encoder (transformer)

    union all

    -- the unknown bucket: categories not seen in the state's rows, and nulls; label -1, and the
    -- last slot of the one-hot vector
    select
        category_counts.fit_end_date,
        encoder.transformer,
        category_counts.feature,
        cast(null as varchar) as category,
        case when encoder.transformer = 'label_encoder' then -1 else category_counts.categories_count end
            as category_index,
        true as is_unknown_bucket,
        category_counts.fit_rows - category_counts.category_rows as category_rows

    from category_counts
    cross join (values ('label_encoder'), ('one_hot_encoder')) as encoder (transformer)

),

encoders as (

    select
        encoder_rows.fit_end_date,
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
        state_dates.fit_rows

    from encoder_rows
    inner join state_dates
        on encoder_rows.fit_end_date = state_dates.fit_end_date

),

state_rows as (

    select * from standard_scaler
    union all
    select * from min_max_scaler
    union all
    select * from encoders

),

-- each state's version is a hash of everything fitted in it (parameters, categories, the rows'
-- dates, counts)
state_version as (

    select
        state_rows.fit_end_date,
        md5(string_agg(
            concat_ws(
                '|', state_rows.transformer, state_rows.feature, coalesce(state_rows.category, '<null>'),
                state_rows.category_index, state_rows.is_unknown_bucket, state_rows.category_rows,
                state_rows.mean, state_rows.std, state_rows.data_min, state_rows.data_max, state_rows.scale,
                state_rows.fit_rows, checked_bounds.fit_start_date, state_rows.fit_end_date
            ),
            chr(10)
            order by state_rows.transformer, state_rows.feature, state_rows.category_index
        )) as state_version

    from state_rows
    cross join checked_bounds
    group by state_rows.fit_end_date

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
        state_rows.fit_end_date,
        cast(state_rows.fit_rows as bigint) as fit_rows

    from state_rows
    cross join checked_bounds
    inner join state_version
        on state_rows.fit_end_date = state_version.fit_end_date
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    -- an incremental build rewrites the states from the earliest recomputed date of the window on
    where state_rows.fit_end_date >= {{ feature_state_recompute_from() }}
    {% endif %}

)

select * from final
