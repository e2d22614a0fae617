with

source as (

    select * from {{ source('appmetrica_silver', 'user_locations') }}

),

renamed as (

    select
        -- ids
        cast(appmetrica_device_id as ubigint) as appmetrica_device_id,

        -- location
        cast(country_iso_code as varchar) as country_iso_code,
        cast(city as varchar) as city,

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
