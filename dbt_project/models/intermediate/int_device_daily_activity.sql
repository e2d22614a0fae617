{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{% if is_incremental() and var('gold_event_dates', none) is not none %}delete from {{ this }} where event_date in {{ gold_date_list('gold_event_dates') }}{% endif %}"
    )
}}

with

events as (

    select * from {{ ref('stg_appmetrica__events') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date in {{ gold_date_list('gold_event_dates') }}
    {% endif %}

),

-- the device's latest event of the day: greatest event_at; ties go to the event received last
-- (unknown receive time ranks below any known one), then to the smallest event_id
ranked_events as (

    select
        appmetrica_device_id,
        event_date,
        event_id,
        event_receive_timestamp,
        os_name,
        os_version,
        device_model,
        app_version_name,
        country_iso_code,
        device_type,
        row_number() over (
            partition by appmetrica_device_id, event_date
            order by
                event_at desc,
                event_receive_timestamp desc nulls last,
                event_id asc
        ) as recency_rank

    from events

),

latest_events as (

    select * from ranked_events
    where recency_rank = 1

),

daily_activity as (

    select
        appmetrica_device_id,
        event_date,
        count(*) as events_count,
        -- count(distinct) skips nulls: events without a session add no session
        count(distinct session_id) as sessions_count,
        count(distinct event_name) as distinct_event_names,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at

    from events
    group by appmetrica_device_id, event_date

),

final as (

    select
        daily_activity.*,
        latest_events.event_id as latest_event_id,
        latest_events.event_receive_timestamp as latest_event_receive_timestamp,
        latest_events.os_name as latest_os_name,
        latest_events.os_version as latest_os_version,
        latest_events.device_model as latest_device_model,
        latest_events.app_version_name as latest_app_version_name,
        latest_events.country_iso_code as latest_country_iso_code,
        latest_events.device_type as latest_device_type

    from daily_activity
    inner join latest_events
        on daily_activity.appmetrica_device_id = latest_events.appmetrica_device_id
        and daily_activity.event_date = latest_events.event_date

)

select * from final
