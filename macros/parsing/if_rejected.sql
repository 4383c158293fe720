{#- The expression on rejected lines, NULL on valid ones: the counterpart of if_valid, for what only a rejected line needs to keep. Expects a rejection_reason column in scope. -#}
{% macro if_rejected(expression) -%}
    if(rejection_reason is null, null, {{ expression }})
{%- endmacro %}
