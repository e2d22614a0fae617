with

events as (

    select * from {{ ref('stg_appmetrica__events') }}

),

device_sessions as (

    select
        appmetrica_device_id,
        event_date,
        session_id,
        count(*) as events_count

    from events
    where session_id is not null
    group by appmetrica_device_id, event_date, session_id

),

final as (

    select * from device_sessions

)

select * from final
