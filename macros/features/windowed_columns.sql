{#- Select-list items `<relation>.<measure>_<N>d,` for each measure and feature window, each followed by a comma; with zero_when_missing, NULL (no row in a left join) becomes 0. -#}
{% macro windowed_columns(measures, relation, zero_when_missing=false) -%}
    {%- for measure in measures %}
        {%- for days in var('feature_windows_days') %}
            {%- set column = relation ~ '.' ~ measure ~ '_' ~ days ~ 'd' %}
        {% if zero_when_missing -%}
            coalesce({{ column }}, 0) as {{ measure }}_{{ days }}d,
        {%- else -%}
            {{ column }},
        {%- endif %}
        {%- endfor %}
    {%- endfor %}
{%- endmacro %}
