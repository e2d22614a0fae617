with

source as (

    select * from {{ source('appmetrica_silver', 'tmp_event_properties') }}

),

renamed as (

    select
        -- ids
        cast(event_id as varchar) as event_id,
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,

        -- property
        cast(event_name as varchar) as event_name,
        cast(property_path as varchar) as property_path,
        cast(value_text as varchar) as value_text,
        cast(value_type as varchar) as value_type,

        -- dates
        cast(event_date as date) as event_date,
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
