{#- The expression on valid lines, NULL on rejected ones: staging models type only what passed the checks. Expects a rejection_reason column in scope. -#}
{% macro if_valid(expression) -%}
    if(rejection_reason is null, {{ expression }}, null)
{%- endmacro %}
