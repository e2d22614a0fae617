with

events as (

    select * from {{ ref('stg_appmetrica__events') }}

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

    select * from daily_activity

)

select * from final
