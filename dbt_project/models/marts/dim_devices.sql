with

events as (

    select * from {{ ref('stg_appmetrica__events') }}

),

seen_dates as (

    select
        appmetrica_device_id,
        min(event_date) as first_seen_date,
        max(event_date) as last_seen_date

    from events
    group by appmetrica_device_id

),

ranked_events as (

    select
        appmetrica_device_id,
        event_id,
        event_at,
        os_name,
        os_version,
        device_model,
        app_version_name,
        country_iso_code,
        device_type,
        -- the latest event wins; equal event_at: the one received last (unknown receive time
        -- ranks below any known one); still equal: the smallest event_id
        row_number() over (
            partition by appmetrica_device_id
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
