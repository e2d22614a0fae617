with

daily_activity as (

    select * from {{ ref('int_device_daily_activity') }}

),

seen_dates as (

    select
        appmetrica_device_id,
        min(event_date) as first_seen_date,
        max(event_date) as last_seen_date

    from daily_activity
    group by appmetrica_device_id

),

-- the latest event of all history is the latest event of the device's last day (event_date is
-- the date of event_at), which int_device_daily_activity already picked with the tie-break
latest_events as (

    select
        daily_activity.appmetrica_device_id,
        daily_activity.last_event_at as event_at,
        daily_activity.latest_event_id as event_id,
        daily_activity.latest_os_name as os_name,
        daily_activity.latest_os_version as os_version,
        daily_activity.latest_device_model as device_model,
        daily_activity.latest_app_version_name as app_version_name,
        daily_activity.latest_country_iso_code as country_iso_code,
        daily_activity.latest_device_type as device_type

    from daily_activity
    inner join seen_dates
        on daily_activity.appmetrica_device_id = seen_dates.appmetrica_device_id
        and daily_activity.event_date = seen_dates.last_seen_date

),

final as (

    select
        seen_dates.appmetrica_device_id,
        seen_dates.first_seen_date,
        seen_dates.last_seen_date,
        latest_events.event_at as last_event_at,
        latest_events.event_id as latest_event_id,
        latest_events.os_name,
        latest_events.os_version,
        latest_events.device_model,
        latest_events.app_version_name,
        latest_events.country_iso_code,
        latest_events.device_type

    from seen_dates
    inner join latest_events
        on seen_dates.appmetrica_device_id = latest_events.appmetrica_device_id

)

select * from final
