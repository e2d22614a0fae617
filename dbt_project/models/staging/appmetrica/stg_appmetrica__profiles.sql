with

source as (

    select * from {{ source('appmetrica_silver', 'permanent_user_properties') }}

),

renamed as (

    select
        -- ids
        cast(profile_id as varchar) as profile_id,
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,

        -- person
        cast(name as varchar) as profile_name,
        cast(gender as varchar) as gender,
        cast(age as integer) as age,
        cast(notifications_enabled as boolean) as is_notifications_enabled,

        -- usage counters
        cast(sessions as bigint) as sessions_count,
        cast(crashes as bigint) as crashes_count,
        cast(errors as bigint) as errors_count,

        -- last known device and place
        cast(city as varchar) as city,
        cast(country_iso_code as varchar) as country_iso_code,
        cast(device_manufacturer as varchar) as device_manufacturer,
        cast(device_model as varchar) as device_model,
        cast(os_name as varchar) as os_name,
        cast(os_version as varchar) as os_version,
        cast(app_version_name as varchar) as app_version_name,

        -- dates
        cast(first_session_date as date) as first_session_date,
        cast(last_start_date as date) as last_start_date,

        -- lineage
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
