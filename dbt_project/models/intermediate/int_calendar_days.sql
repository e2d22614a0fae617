with

events as (

    select * from {{ ref('stg_appmetrica__events') }}

),

bounds as (

    select
        min(event_date) as first_day,
        max(export_date) as last_day

    from events

),

calendar_days as (

    -- no events: both bounds are null and the series is empty
    select cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as date_day
    from bounds

),

final as (

    select * from calendar_days

)

select * from final
