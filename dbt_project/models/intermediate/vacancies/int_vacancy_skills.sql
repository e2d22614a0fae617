with

vacancies as (

    select * from {{ ref('int_vacancies__latest') }}

),

listed as (

    select
        vacancy_id,
        published_at,
        salary_from,
        salary_to,
        salary_currency,
        unnest(key_skills) as skill_as_listed

    from vacancies

),

normalized as (

    select
        vacancy_id,
        cast(published_at as date) as published_date,
        salary_from,
        salary_to,
        salary_currency,
        lower(trim(regexp_replace(skill_as_listed, '\s+', ' ', 'g'))) as skill

    from listed

),

final as (

    select distinct
        vacancy_id,
        published_date,
        skill,
        salary_from,
        salary_to,
        salary_currency

    from normalized
    where skill is not null and skill <> ''

)

select * from final
