with

daily_activity as (

    select * from {{ ref('int_device_daily_activity') }}

),

events as (

    select * from {{ ref('stg_appmetrica__events') }}

),

bounds as (

    select
        (select min(event_date) from daily_activity) as first_day,
        {% if var('gold_last_export_date', none) is not none -%}
        date '{{ var('gold_last_export_date') }}' as last_day
        {%- else -%}
        (select max(export_date) from events) as last_day
        {%- endif %}

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
