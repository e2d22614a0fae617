with

versions as (

    select * from {{ ref('stg_vacancies__vacancies') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by vacancy_id
            order by updated_at desc, export_date desc, bronze_file desc, bronze_row desc
        ) as version_rank

    from versions

),

latest as (

    select * exclude (version_rank)
    from ranked
    where version_rank = 1

)

select * from latest
