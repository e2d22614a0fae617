{#-
    Fails with one row per combination of `combination_of_columns` that occurs more than once.
    Null values group together (a second row with the same nulls is a duplicate too).
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grain as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as rows_with_this_key

    from {{ model }}
    group by all

),

final as (

    select * from grain
    where rows_with_this_key > 1

)

select * from final

{% endtest %}
