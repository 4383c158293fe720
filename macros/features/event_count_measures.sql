{#- The daily count columns, `<event_type>_count`, one per entry of the var event_types, from which the windowed counts are summed. -#}
{% macro event_count_measures() -%}
    {%- set measures = [] -%}
    {%- for event_type in var('event_types') -%}
        {%- do measures.append(event_type ~ '_count') -%}
    {%- endfor -%}
    {{ return(measures) }}
{%- endmacro %}
