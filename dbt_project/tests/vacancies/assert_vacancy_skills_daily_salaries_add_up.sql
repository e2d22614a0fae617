-- vacancy_skills_daily: vacancies_with_salary is the sum of salary_by_currency[].vacancies, each
-- currency appears once per row, and a median never comes from an empty set of vacancies.
select
    published_date,
    skill,
    vacancies_with_salary,
    salary_by_currency

from {{ ref('vacancy_skills_daily') }}
where vacancies_with_salary <> coalesce(list_sum(list_transform(salary_by_currency, lambda s: s.vacancies)), 0)
    or len(salary_by_currency) <> len(list_distinct(list_transform(salary_by_currency, lambda s: s.currency)))
    or len(list_filter(salary_by_currency, lambda s: s.vacancies < 1 or s.currency is null)) > 0
