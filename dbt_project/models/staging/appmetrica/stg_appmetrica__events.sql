with

source as (

    select * from {{ source('appmetrica_silver', 'events_part') }}

),

renamed as (

    select
        -- ids
        cast(event_id as varchar) as event_id,
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,
        cast(session_id as ubigint) as session_id,
        cast(installation_id as varchar) as installation_id,
        cast(profile_id as varchar) as profile_id,
        cast(application_id as bigint) as application_id,

        -- event
        cast(event_name as varchar) as event_name,
        cast(event_json as varchar) as event_json,

        -- device
        cast(os_name as varchar) as os_name,
        cast(os_version as varchar) as os_version,
        cast(device_manufacturer as varchar) as device_manufacturer,
        cast(device_model as varchar) as device_model,
        cast(original_device_model as varchar) as original_device_model,
        cast(device_type as varchar) as device_type,
        cast(device_locale as varchar) as device_locale,
        cast(device_ipv6 as varchar) as device_ipv6,
        cast(google_aid as varchar) as google_aid,
        cast(ios_ifa as varchar) as ios_ifa,
        cast(ios_ifv as varchar) as ios_ifv,
        cast(windows_aid as varchar) as windows_aid,

        -- network and location
        cast(connection_type as varchar) as connection_type,
        cast(operator_name as varchar) as operator_name,
        cast(mcc as integer) as mcc,
        cast(mnc as integer) as mnc,
        cast(country_iso_code as varchar) as country_iso_code,
        cast(city as varchar) as city,

        -- app
        cast(app_package_name as varchar) as app_package_name,
        cast(app_version_name as varchar) as app_version_name,
        cast(app_build_number as bigint) as app_build_number,

        -- dates and timestamps
        cast(event_date as date) as event_date,
        cast(event_datetime as timestamp) as event_at,
        cast(event_timestamp as bigint) as event_timestamp,
        cast(event_receive_datetime as timestamp) as event_received_at,
        cast(event_receive_timestamp as bigint) as event_receive_timestamp,

        -- lineage
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
