with

skills as (

    select * from {{ ref('int_vacancy_skills') }}

),

with_salary as (

    select *
    from skills
    where salary_currency is not null
        and (salary_from is not null or salary_to is not null)

),

daily as (

    select
        published_date,
        skill,
        count(*) as vacancies_count

    from skills
    group by published_date, skill

),

by_currency as (

    select
        published_date,
        skill,
        salary_currency as currency,
        count(*) as vacancies,
        median(salary_from) as median_salary_from,
        median(salary_to) as median_salary_to

    from with_salary
    group by published_date, skill, salary_currency

),

salaries as (

    select
        published_date,
        skill,
        sum(vacancies) as vacancies_with_salary,
        list(
            struct_pack(
                currency := currency,
                vacancies := vacancies,
                median_salary_from := cast(median_salary_from as double),
                median_salary_to := cast(median_salary_to as double)
            )
            order by currency
        ) as salary_by_currency

    from by_currency
    group by published_date, skill

),

final as (

    select
        daily.published_date,
        daily.skill,
        daily.vacancies_count,
        cast(coalesce(salaries.vacancies_with_salary, 0) as bigint) as vacancies_with_salary,
        coalesce(
            salaries.salary_by_currency,
            cast([] as struct(currency varchar, vacancies bigint, median_salary_from double, median_salary_to double)[])
        ) as salary_by_currency

    from daily
    left join salaries
        on daily.published_date = salaries.published_date
        and daily.skill = salaries.skill

)

select * from final
