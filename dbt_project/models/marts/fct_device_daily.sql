with

daily_activity as (

    select * from {{ ref('int_device_daily_activity') }}

),

final as (

    select
        appmetrica_device_id,
        event_date,
        events_count,
        sessions_count,
        distinct_event_names,
        first_event_at,
        last_event_at

    from daily_activity

)

select * from final
