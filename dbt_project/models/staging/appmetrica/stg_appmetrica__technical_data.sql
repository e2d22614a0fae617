with

source as (

    select * from {{ source('appmetrica_silver', 'technical_data') }}

),

renamed as (

    select
        -- ids
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,
        cast(installation_id as varchar) as installation_id,
        cast(session_id as ubigint) as session_id,

        -- app and sdk
        cast(app_version_name as varchar) as app_version_name,
        cast(app_build_number as bigint) as app_build_number,
        cast(appmetrica_sdk_version as varchar) as appmetrica_sdk_version,

        -- network
        cast(connection_type as varchar) as connection_type,
        cast(operator_name as varchar) as operator_name,
        cast(mcc as integer) as mcc,
        cast(mnc as integer) as mnc,

        -- provenance and timestamps
        cast(source.source as varchar) as source_resource,
        cast(session_started_at as timestamp) as session_started_at,
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
