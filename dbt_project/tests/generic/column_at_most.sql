{#-
    Fails with every row where `column_name` is greater than `other_column` of the same row.
    Rows where either value is null are not compared (not_null tests cover those).
-#}
{% test column_at_most(model, column_name, other_column) %}

with

compared as (

    select
        {{ column_name }} as checked_value,
        {{ other_column }} as upper_bound

    from {{ model }}

),

final as (

    select * from compared
    where checked_value > upper_bound

)

select * from final

{% endtest %}
