with

source as (

    select * from {{ source('appmetrica_silver', 'tmp_user_properties') }}

),

renamed as (

    select
        -- ids
        cast(profile_id as varchar) as profile_id,

        -- attribute
        cast(attribute_name as varchar) as attribute_name,
        cast(value_text as varchar) as value_text,
        cast(value_type as varchar) as value_type,

        -- dates
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
