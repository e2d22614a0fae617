{% macro reporting_currency() %}
    {#-
        The one currency the revenue features add amounts in: env LAKEHOUSE_REPORTING_CURRENCY
        (default USD), an ISO 4217 code of three capital letters. Amounts exported in any other
        currency are never converted: the features count them apart (see docs/features.md).
        transforms/gold.py checks the setting before dbt runs; this check covers a bare `dbt build`.
    -#}
    {%- set code = env_var('LAKEHOUSE_REPORTING_CURRENCY', '') | trim or 'USD' -%}
    {%- if not modules.re.fullmatch('[A-Z]{3}', code) -%}
        {{ exceptions.raise_compiler_error(
            "LAKEHOUSE_REPORTING_CURRENCY must be an ISO 4217 code of three capital letters (e.g. USD), got '"
            ~ code ~ "'"
        ) }}
    {%- endif -%}
    {{ return(code) }}
{% endmacro %}
