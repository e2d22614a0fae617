{%- set numeric_columns = feature_transform_numeric_columns() -%}

with

features as (

    select * from {{ ref('device_features_daily') }}

),

-- the fitted states (one per date of the training window)
states as (

    select distinct
        state_version,
        fit_start_date,
        fit_end_date

    from {{ ref('feature_transformer_state') }}

),

-- each date's state: the latest one fitted up to it, as device_features_daily_transformed
-- applies it (none before the training window)
date_states as (

    select
        dates.feature_date,
        states.state_version,
        states.fit_start_date,
        states.fit_end_date

    from (select distinct feature_date from features) as dates
    asof left join states
        on dates.feature_date >= states.fit_end_date

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

-- PSI is computed for a date after its state's rows only (a date inside the training window is
-- part of its own reference): the reference is the state's rows, all dated before the date
judged_dates as (

    select * from date_states
    where feature_date > fit_end_date

),

reference_states as (

    select distinct state_version, fit_start_date, fit_end_date
    from judged_dates

),

fit_values as (

    select
        reference_states.state_version,
        feature_values.feature,
        cast(feature_values.feature_value as double) as feature_value

    from feature_values
    inner join reference_states
        on feature_values.feature_date between reference_states.fit_start_date and reference_states.fit_end_date
    where feature_values.feature_value is not null

),

-- PSI bins: the distinct deciles of the reference; bin i holds values above i edges
bin_edges as (

    select
        state_version,
        feature,
        list_sort(list_distinct(
            quantile_disc(feature_value, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
        )) as edges

    from fit_values
    group by state_version, feature

),

binned_values as (

    select
        feature_values.feature_date,
        feature_values.feature,
        len(list_filter(bin_edges.edges, edge -> edge < feature_values.feature_value)) as bin

    from feature_values
    inner join judged_dates
        on feature_values.feature_date = judged_dates.feature_date
    inner join bin_edges
        on judged_dates.state_version = bin_edges.state_version
        and feature_values.feature = bin_edges.feature
    where feature_values.feature_value is not null

),

expected_shares as (

    select
        fit_values.state_version,
        fit_values.feature,
        len(list_filter(bin_edges.edges, edge -> edge < fit_values.feature_value)) as bin,
        count(*) as bin_rows

    from fit_values
    inner join bin_edges
        on fit_values.state_version = bin_edges.state_version
        and fit_values.feature = bin_edges.feature
    group by all

),

expected as (

    select
        state_version,
        feature,
        bin,
        bin_rows / sum(bin_rows) over (partition by state_version, feature) as share

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

-- every bin of the reference on every judged date: a bin empty on either side counts with
-- share 0.0001
all_bins as (

    select
        dates.feature_date,
        dates.state_version,
        bin_edges.feature,
        unnest(range(len(bin_edges.edges) + 1)) as bin

    from (select distinct feature_date from actual_shares) as actual_dates
    inner join judged_dates as dates
        on actual_dates.feature_date = dates.feature_date
    inner join bin_edges
        on dates.state_version = bin_edges.state_version

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
        on all_bins.state_version = expected.state_version
        and all_bins.feature = expected.feature
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
        date_states.state_version,
        date_states.fit_start_date,
        date_states.fit_end_date

    from daily_stats
    inner join date_states
        on daily_stats.feature_date = date_states.feature_date
    left join psi
        on daily_stats.feature_date = psi.feature_date
        and daily_stats.feature = psi.feature

)

select * from final
