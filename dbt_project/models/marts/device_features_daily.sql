{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() and var('gold_event_dates', none) is not none %}delete from {{ this }} where feature_date in {{ gold_date_list('gold_feature_dates') }}{% endif %}"
    )
}}

{%- set feature_dates = gold_date_list('gold_feature_dates') -%}

with

-- an incremental build recomputes only gold_feature_dates, reading the 28 days before each
daily_activity as (

    select * from {{ ref('int_device_daily_activity') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date between (select min(d) - 27 from (select unnest([{{ feature_dates[1:-1] }}]) as d))
        and (select max(d) from (select unnest([{{ feature_dates[1:-1] }}]) as d))
    {% endif %}

),

device_sessions as (

    select * from {{ ref('int_device_sessions_daily') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date between (select min(d) - 6 from (select unnest([{{ feature_dates[1:-1] }}]) as d))
        and (select max(d) from (select unnest([{{ feature_dates[1:-1] }}]) as d))
    {% endif %}

),

device_revenue as (

    select * from {{ ref('int_device_revenue_daily') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date between (select min(d) - 27 from (select unnest([{{ feature_dates[1:-1] }}]) as d))
        and (select max(d) from (select unnest([{{ feature_dates[1:-1] }}]) as d))
    {% endif %}

),

device_stability as (

    select * from {{ ref('int_device_stability_daily') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date between (select min(d) - 6 from (select unnest([{{ feature_dates[1:-1] }}]) as d))
        and (select max(d) from (select unnest([{{ feature_dates[1:-1] }}]) as d))
    {% endif %}

),

calendar_days as (

    select * from {{ ref('int_calendar_days') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where date_day in {{ feature_dates }}
    {% endif %}

),

-- the first event of all history (not only of the window read above)
all_daily_activity as (

    select * from {{ ref('int_device_daily_activity') }}

),

-- every (device, feature_date) with at least one active day in the 28 days ending on it
feature_grid as (

    select distinct
        daily_activity.appmetrica_device_id,
        calendar_days.date_day as feature_date

    from daily_activity
    inner join calendar_days
        on calendar_days.date_day between daily_activity.event_date and daily_activity.event_date + 27

),

-- the device's active days in the 28-day window ending on feature_date (never after it)
window_days as (

    select
        feature_grid.appmetrica_device_id,
        feature_grid.feature_date,
        daily_activity.event_date,
        daily_activity.events_count

    from feature_grid
    inner join daily_activity
        on feature_grid.appmetrica_device_id = daily_activity.appmetrica_device_id
        and daily_activity.event_date between feature_grid.feature_date - 27 and feature_grid.feature_date

),

window_events as (

    select
        appmetrica_device_id,
        feature_date,
        sum(case when event_date = feature_date then events_count else 0 end) as events_1d,
        sum(case when event_date >= feature_date - 6 then events_count else 0 end) as events_7d,
        sum(events_count) as events_28d,
        count(*) as active_days_28d,
        max(event_date) as last_event_date

    from window_days
    group by appmetrica_device_id, feature_date

),

window_sessions as (

    select
        feature_grid.appmetrica_device_id,
        feature_grid.feature_date,
        count(distinct device_sessions.session_id) as sessions_7d

    from feature_grid
    inner join device_sessions
        on feature_grid.appmetrica_device_id = device_sessions.appmetrica_device_id
        and device_sessions.event_date between feature_grid.feature_date - 6 and feature_grid.feature_date
    group by feature_grid.appmetrica_device_id, feature_grid.feature_date

),

-- purchases, revenue and ad revenue dated feature_date-27 .. feature_date (never after it)
window_revenue as (

    select
        feature_grid.appmetrica_device_id,
        feature_grid.feature_date,
        sum(device_revenue.purchases_count) as purchases_28d,
        sum(device_revenue.revenue_amount) as revenue_28d,
        sum(device_revenue.revenue_other_currency_events) as revenue_other_currency_events_28d,
        sum(device_revenue.ad_revenue_amount) as ad_revenue_28d,
        sum(device_revenue.ad_revenue_other_currency_events) as ad_revenue_other_currency_events_28d

    from feature_grid
    inner join device_revenue
        on feature_grid.appmetrica_device_id = device_revenue.appmetrica_device_id
        and device_revenue.event_date between feature_grid.feature_date - 27 and feature_grid.feature_date
    group by feature_grid.appmetrica_device_id, feature_grid.feature_date

),

-- crashes and errors dated feature_date-6 .. feature_date
window_stability as (

    select
        feature_grid.appmetrica_device_id,
        feature_grid.feature_date,
        sum(device_stability.crashes_count) as crashes_7d,
        sum(device_stability.errors_count) as errors_7d

    from feature_grid
    inner join device_stability
        on feature_grid.appmetrica_device_id = device_stability.appmetrica_device_id
        and device_stability.event_date between feature_grid.feature_date - 6 and feature_grid.feature_date
    group by feature_grid.appmetrica_device_id, feature_grid.feature_date

),

-- every grid row has an event on or before feature_date, so the first event of all history is
-- also the first one up to feature_date
first_seen as (

    select
        appmetrica_device_id,
        min(event_date) as first_seen_date

    from all_daily_activity
    group by appmetrica_device_id

),

final as (

    select
        window_events.appmetrica_device_id,
        window_events.feature_date,
        cast(window_events.events_1d as bigint) as events_1d,
        cast(window_events.events_7d as bigint) as events_7d,
        cast(window_events.events_28d as bigint) as events_28d,
        cast(coalesce(window_sessions.sessions_7d, 0) as bigint) as sessions_7d,
        cast(window_events.active_days_28d as bigint) as active_days_28d,
        cast(window_events.feature_date - first_seen.first_seen_date as bigint) as days_since_first_seen,
        cast(window_events.feature_date - window_events.last_event_date as bigint) as days_since_last_event,
        cast(coalesce(window_revenue.purchases_28d, 0) as bigint) as purchases_28d,
        cast(coalesce(window_revenue.revenue_28d, 0) as decimal(38, 9)) as revenue_28d,
        cast(coalesce(window_revenue.revenue_other_currency_events_28d, 0) as bigint)
            as revenue_other_currency_events_28d,
        cast(coalesce(window_revenue.ad_revenue_28d, 0) as decimal(38, 9)) as ad_revenue_28d,
        cast(coalesce(window_revenue.ad_revenue_other_currency_events_28d, 0) as bigint)
            as ad_revenue_other_currency_events_28d,
        cast(coalesce(window_stability.crashes_7d, 0) as bigint) as crashes_7d,
        cast(coalesce(window_stability.errors_7d, 0) as bigint) as errors_7d

    from window_events
    inner join first_seen
        on window_events.appmetrica_device_id = first_seen.appmetrica_device_id
    left join window_sessions
        on window_events.appmetrica_device_id = window_sessions.appmetrica_device_id
        and window_events.feature_date = window_sessions.feature_date
    left join window_revenue
        on window_events.appmetrica_device_id = window_revenue.appmetrica_device_id
        and window_events.feature_date = window_revenue.feature_date
    left join window_stability
        on window_events.appmetrica_device_id = window_stability.appmetrica_device_id
        and window_events.feature_date = window_stability.feature_date

)

select * from final
