{%- set numeric_columns = feature_transform_numeric_columns() -%}

with

features as (

    select * from {{ ref('device_features_daily') }}

),

-- the transformers' training window and the version of the state fitted on it (one row)
fitted_state as (

    select distinct
        state_version,
        fit_start_date,
        fit_end_date

    from {{ ref('feature_transformer_state') }}

),

-- one row per device, feature_date and feature; nulls kept (they count in null_rate)
feature_values as (

    select
        feature_date,
        feature,
        feature_value

    from (select feature_date, {{ numeric_columns | join(', ') }} from features)
    unpivot include nulls (feature_value for feature in ({{ numeric_columns | join(', ') }}))

),

fit_values as (

    select
        feature_values.feature,
        cast(feature_values.feature_value as double) as feature_value

    from feature_values
    inner join fitted_state
        on feature_values.feature_date between fitted_state.fit_start_date and fitted_state.fit_end_date
    where feature_values.feature_value is not null

),

-- PSI bins: the distinct deciles of the training window; bin i holds values above i edges
bin_edges as (

    select
        feature,
        list_sort(list_distinct(
            quantile_disc(feature_value, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
        )) as edges

    from fit_values
    group by feature

),

binned_values as (

    select
        feature_values.feature_date,
        feature_values.feature,
        len(list_filter(bin_edges.edges, edge -> edge < feature_values.feature_value)) as bin

    from feature_values
    inner join bin_edges
        on feature_values.feature = bin_edges.feature
    where feature_values.feature_value is not null

),

expected_shares as (

    select
        fit_values.feature,
        len(list_filter(bin_edges.edges, edge -> edge < fit_values.feature_value)) as bin,
        count(*) as bin_rows

    from fit_values
    inner join bin_edges
        on fit_values.feature = bin_edges.feature
    group by all

),

expected as (

    select
        feature,
        bin,
        bin_rows / sum(bin_rows) over (partition by feature) as share

    from expected_shares

),

actual_shares as (

    select
        feature_date,
        feature,
        bin,
        count(*) as bin_rows

    from binned_values
    group by all

),

-- every bin of the window on every date: a bin empty on either side counts with share 0.0001
all_bins as (

    select
        dates.feature_date,
        bin_edges.feature,
        unnest(range(len(bin_edges.edges) + 1)) as bin

    from (select distinct feature_date from actual_shares) as dates
    cross join bin_edges

),

psi_terms as (

    select
        all_bins.feature_date,
        all_bins.feature,
        greatest(coalesce(expected.share, 0), 0.0001) as expected_share,
        greatest(
            coalesce(
                actual_shares.bin_rows / sum(actual_shares.bin_rows)
                    over (partition by all_bins.feature_date, all_bins.feature),
                0
            ),
            0.0001
        ) as actual_share

    from all_bins
    left join expected
        on all_bins.feature = expected.feature
        and all_bins.bin = expected.bin
    left join actual_shares
        on all_bins.feature_date = actual_shares.feature_date
        and all_bins.feature = actual_shares.feature
        and all_bins.bin = actual_shares.bin

),

psi as (

    select
        feature_date,
        feature,
        round(sum((actual_share - expected_share) * ln(actual_share / expected_share)), 6) as psi

    from psi_terms
    group by all

),

daily_stats as (

    select
        feature_date,
        feature,
        count(*) as feature_rows,
        count(*) - count(feature_value) as null_rows,
        avg(feature_value) as mean_value,
        quantile_cont(feature_value, 0.5) as p50_value,
        quantile_cont(feature_value, 0.95) as p95_value

    from feature_values
    group by all

),

final as (

    select
        daily_stats.feature,
        daily_stats.feature_date,
        'device_features_daily' as source_model,
        cast(daily_stats.feature_rows as bigint) as rows,
        cast(daily_stats.null_rows as double) / daily_stats.feature_rows as null_rate,
        cast(daily_stats.mean_value as double) as mean,
        cast(daily_stats.p50_value as double) as p50,
        cast(daily_stats.p95_value as double) as p95,
        cast(psi.psi as double) as psi,
        fitted_state.state_version,
        fitted_state.fit_start_date,
        fitted_state.fit_end_date

    from daily_stats
    cross join fitted_state
    left join psi
        on daily_stats.feature_date = psi.feature_date
        and daily_stats.feature = psi.feature

)

select * from final
