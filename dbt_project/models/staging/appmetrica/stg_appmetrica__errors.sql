with

source as (

    select * from {{ source('appmetrica_silver', 'errors') }}

),

renamed as (

    select
        cast(record_id as varchar) as record_id,
        cast(error_date as date) as error_date,
        cast(error as varchar) as error,
        cast(error_datetime as timestamp) as error_at,
        cast(error_id as varchar) as error_id,
        cast(error_name as varchar) as error_name,
        cast(error_receive_datetime as timestamp) as error_received_at,
        cast(error_receive_timestamp as bigint) as error_receive_timestamp,
        cast(error_timestamp as bigint) as error_timestamp,
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,
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
        cast(os_name as varchar) as os_name,
        cast(os_version as varchar) as os_version,
        cast(profile_id as varchar) as profile_id,
        cast(windows_aid as varchar) as windows_aid,
        cast(app_package_name as varchar) as app_package_name,
        cast(app_version_name as varchar) as app_version_name,
        cast(application_id as bigint) as application_id,
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
