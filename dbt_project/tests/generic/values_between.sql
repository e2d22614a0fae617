{#-
    Fails with every row whose `column_name` lies outside [min_value, max_value] (bounds included;
    either bound may be omitted). Null values are not checked (not_null tests cover those).
-#}
{% test values_between(model, column_name, min_value=none, max_value=none) %}

with

checked as (

    select {{ column_name }} as checked_value
    from {{ model }}

),

final as (

    select * from checked
    where
        false
        {%- if min_value is not none %}
        or checked_value < {{ min_value }}
        {%- endif %}
        {%- if max_value is not none %}
        or checked_value > {{ max_value }}
        {%- endif %}

)

select * from final

{% endtest %}
