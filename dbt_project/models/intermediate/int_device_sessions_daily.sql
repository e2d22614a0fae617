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
