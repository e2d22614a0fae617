with

source as (

    select * from {{ source('appmetrica_silver', 'revenue_events') }}

),

renamed as (

    select
        cast(record_id as varchar) as record_id,
        cast(event_date as date) as event_date,
        cast(revenue_quantity as bigint) as revenue_quantity,
        cast(revenue_price as decimal(38, 9)) as revenue_price,
        cast(revenue_currency as varchar) as revenue_currency,
        cast(revenue_product_id as varchar) as revenue_product_id,
        cast(revenue_order_id as varchar) as revenue_order_id,
        cast(revenue_order_id_source as varchar) as revenue_order_id_source,
        cast(is_revenue_verified as varchar) as is_revenue_verified,
        cast(event_datetime as timestamp) as event_at,
        cast(event_name as varchar) as event_name,
        cast(event_receive_datetime as timestamp) as event_received_at,
        cast(event_receive_timestamp as bigint) as event_receive_timestamp,
        cast(event_timestamp as bigint) as event_timestamp,
        cast(session_id as ubigint) as session_id,
        cast(installation_id as varchar) as installation_id,
        cast(android_id as varchar) as android_id,
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,
        cast(appmetrica_sdk_version as varchar) as appmetrica_sdk_version,
        cast(city as varchar) as city,
        cast(connection_type as varchar) as connection_type,
        cast(country_iso_code as varchar) as country_iso_code,
        cast(device_ipv6 as varchar) as device_ipv6,
        cast(device_locale as varchar) as device_locale,
        cast(device_manufacturer as varchar) as device_manufacturer,
        cast(device_model as varchar) as device_model,
        cast(google_aid as varchar) as google_aid,
        cast(ios_ifa as varchar) as ios_ifa,
        cast(ios_ifv as varchar) as ios_ifv,
        cast(mcc as integer) as mcc,
        cast(mnc as integer) as mnc,
        cast(operator_name as varchar) as operator_name,
        cast(original_device_model as varchar) as original_device_model,
        cast(os_version as varchar) as os_version,
        cast(profile_id as varchar) as profile_id,
        cast(windows_aid as varchar) as windows_aid,
        cast(app_build_number as bigint) as app_build_number,
        cast(app_package_name as varchar) as app_package_name,
        cast(app_version_name as varchar) as app_version_name,
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
