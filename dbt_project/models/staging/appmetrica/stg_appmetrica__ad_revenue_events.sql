with

source as (

    select * from {{ source('appmetrica_silver', 'ad_revenue_events') }}

),

renamed as (

    select
        cast(record_id as varchar) as record_id,
        cast(ad_revenue_date as date) as ad_revenue_date,
        cast(ad_revenue_datetime as timestamp) as ad_revenue_at,
        cast(ad_revenue_timestamp as bigint) as ad_revenue_timestamp,
        cast(ad_revenue_receive_datetime as timestamp) as ad_revenue_received_at,
        cast(ad_revenue_receive_timestamp as bigint) as ad_revenue_receive_timestamp,
        cast(ad_revenue as decimal(38, 9)) as ad_revenue,
        cast(ad_revenue_currency as varchar) as ad_revenue_currency,
        cast(ad_revenue_type as varchar) as ad_revenue_type,
        cast(ad_revenue_data_source as varchar) as ad_revenue_data_source,
        cast(ad_revenue_network as varchar) as ad_revenue_network,
        cast(ad_revenue_placement_id as varchar) as ad_revenue_placement_id,
        cast(ad_revenue_placement_name as varchar) as ad_revenue_placement_name,
        cast(ad_revenue_unit_id as varchar) as ad_revenue_unit_id,
        cast(ad_revenue_unit_name as varchar) as ad_revenue_unit_name,
        cast(ad_revenue_precision as varchar) as ad_revenue_precision,
        cast(ad_revenue_payload as varchar) as ad_revenue_payload,
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
        cast(device_type as varchar) as device_type,
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
