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

-- the rows of device_features_daily (every device with an active day in the 28 days ending on
-- feature_date)
feature_grid as (

    select appmetrica_device_id, feature_date
    from {{ ref('device_features_daily') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where feature_date in {{ feature_dates }}
    {% endif %}

),

-- the device's last active day up to and including feature_date (never after it); the grid
-- guarantees one in the 28 days ending on feature_date
as_of_days as (

    select
        feature_grid.appmetrica_device_id,
        feature_grid.feature_date,
        max(daily_activity.event_date) as as_of_event_date

    from feature_grid
    inner join daily_activity
        on feature_grid.appmetrica_device_id = daily_activity.appmetrica_device_id
        and daily_activity.event_date between feature_grid.feature_date - 27 and feature_grid.feature_date
    group by feature_grid.appmetrica_device_id, feature_grid.feature_date

),

-- the latest event up to feature_date is the latest event of that day, which
-- int_device_daily_activity picked with the tie-break of dim_devices
final as (

    select
        as_of_days.appmetrica_device_id,
        as_of_days.feature_date,
        daily_activity.last_event_at,
        daily_activity.latest_event_id,
        daily_activity.latest_os_name as os_name,
        daily_activity.latest_os_version as os_version,
        daily_activity.latest_device_model as device_model,
        daily_activity.latest_app_version_name as app_version_name,
        daily_activity.latest_country_iso_code as country_iso_code,
        daily_activity.latest_device_type as device_type

    from as_of_days
    inner join daily_activity
        on as_of_days.appmetrica_device_id = daily_activity.appmetrica_device_id
        and as_of_days.as_of_event_date = daily_activity.event_date

)

select * from final
