with

source as (

    select * from {{ source('vacancies_silver', 'vacancies') }}

),

renamed as (

    select
        -- ids
        cast(vacancy_id as varchar) as vacancy_id,
        cast(employer_id as varchar) as employer_id,
        cast(area_id as varchar) as area_id,

        -- vacancy
        cast(name as varchar) as vacancy_name,
        cast(employer_name as varchar) as employer_name,
        cast(area_name as varchar) as area_name,
        cast(key_skills as varchar[]) as key_skills,
        cast(archived as boolean) as is_archived,

        -- salary
        cast(salary_from as bigint) as salary_from,
        cast(salary_to as bigint) as salary_to,
        cast(salary_currency as varchar) as salary_currency,
        cast(salary_gross as boolean) as is_salary_gross,

        -- timestamps (naive UTC)
        cast(published_at as timestamp) as published_at,
        cast(updated_at as timestamp) as updated_at,

        -- lineage
        cast(export_date as date) as export_date,
        cast(bronze_file as varchar) as bronze_file,
        cast(bronze_row as bigint) as bronze_row

    from source

)

select * from renamed
