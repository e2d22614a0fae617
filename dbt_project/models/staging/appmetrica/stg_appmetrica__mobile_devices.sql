with

source as (

    select * from {{ source('appmetrica_silver', 'mobile_devices') }}

),

renamed as (

    select
        -- ids
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,

        -- device
        cast(device_manufacturer as varchar) as device_manufacturer,
        cast(device_model as varchar) as device_model,
        cast(original_device_model as varchar) as original_device_model,
        cast(device_type as varchar) as device_type,
        cast(os_name as varchar) as os_name,
        cast(os_version as varchar) as os_version,
        cast(device_locale as varchar) as device_locale,

        -- observations
        cast(observations as bigint) as observations_count,
        cast(first_seen_at as timestamp) as first_seen_at,
        cast(last_seen_at as timestamp) as last_seen_at,
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
