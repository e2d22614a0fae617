{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{% if is_incremental() and var('gold_event_dates', none) is not none %}delete from {{ this }} where event_date in {{ gold_date_list('gold_event_dates') }}{% endif %}"
    )
}}

{%- set currency = reporting_currency() -%}

with

revenue_events as (

    select * from {{ ref('stg_appmetrica__revenue_events') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where event_date in {{ gold_date_list('gold_event_dates') }}
    {% endif %}

),

ad_revenue_events as (

    select * from {{ ref('stg_appmetrica__ad_revenue_events') }}
    {% if is_incremental() and var('gold_event_dates', none) is not none %}
    where ad_revenue_date in {{ gold_date_list('gold_event_dates') }}
    {% endif %}

),

-- a row's in-app amount is price x quantity (an empty quantity is one item); a refund's price is negative
in_app as (

    select
        appmetrica_device_id,
        event_date,
        count(*) filter (where revenue_price >= 0) as purchases_count,
        coalesce(
            sum(revenue_price * coalesce(revenue_quantity, 1)) filter (where revenue_currency = '{{ currency }}'),
            0
        ) as revenue_amount,
        count(*) filter (where revenue_currency is distinct from '{{ currency }}') as revenue_other_currency_events

    from revenue_events
    group by appmetrica_device_id, event_date

),

ads as (

    select
        appmetrica_device_id,
        ad_revenue_date as event_date,
        coalesce(sum(ad_revenue) filter (where ad_revenue_currency = '{{ currency }}'), 0) as ad_revenue_amount,
        count(*) filter (where ad_revenue_currency is distinct from '{{ currency }}') as ad_revenue_other_currency_events

    from ad_revenue_events
    group by appmetrica_device_id, ad_revenue_date

),

final as (

    select
        coalesce(in_app.appmetrica_device_id, ads.appmetrica_device_id) as appmetrica_device_id,
        coalesce(in_app.event_date, ads.event_date) as event_date,
        cast(coalesce(in_app.purchases_count, 0) as bigint) as purchases_count,
        cast(coalesce(in_app.revenue_amount, 0) as decimal(38, 9)) as revenue_amount,
        cast(coalesce(in_app.revenue_other_currency_events, 0) as bigint) as revenue_other_currency_events,
        cast(coalesce(ads.ad_revenue_amount, 0) as decimal(38, 9)) as ad_revenue_amount,
        cast(coalesce(ads.ad_revenue_other_currency_events, 0) as bigint) as ad_revenue_other_currency_events

    from in_app
    full outer join ads
        on in_app.appmetrica_device_id = ads.appmetrica_device_id
        and in_app.event_date = ads.event_date

)

select * from final
