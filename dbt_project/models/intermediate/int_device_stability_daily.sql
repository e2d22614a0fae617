{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{% if is_incremental() and var('gold_event_dates', none) is not none %}delete from {{ this }} where event_date in {{ gold_date_list('gold_event_dates') }}{% endif %}"
    )
}}

with

crashes as (

    select * from {{ ref('stg_appmetrica__crashes') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where crash_date in {{ gold_date_list('gold_event_dates') }}
    {% endif %}

),

errors as (

    select * from {{ ref('stg_appmetrica__errors') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where error_date in {{ gold_date_list('gold_event_dates') }}
    {% endif %}

),

daily_crashes as (

    select appmetrica_device_id, crash_date as event_date, count(*) as crashes_count
    from crashes
    group by appmetrica_device_id, crash_date

),

daily_errors as (

    select appmetrica_device_id, error_date as event_date, count(*) as errors_count
    from errors
    group by appmetrica_device_id, error_date

),

final as (

    select
        coalesce(daily_crashes.appmetrica_device_id, daily_errors.appmetrica_device_id) as appmetrica_device_id,
        coalesce(daily_crashes.event_date, daily_errors.event_date) as event_date,
        cast(coalesce(daily_crashes.crashes_count, 0) as bigint) as crashes_count,
        cast(coalesce(daily_errors.errors_count, 0) as bigint) as errors_count

    from daily_crashes
    full outer join daily_errors
        on daily_crashes.appmetrica_device_id = daily_errors.appmetrica_device_id
        and daily_crashes.event_date = daily_errors.event_date

)

select * from final
