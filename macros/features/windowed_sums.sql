{#-
    One summed column per feature window (the var feature_windows_days) for
    each given daily measure: `<measure>_<N>d`, the sum of the measure over
    the rows whose date lies in the N-day window. Rows outside the window
    add 0, so a user without activity in a window gets 0, not NULL.
-#}
{% macro windowed_sums(measures, date_column='event_date') -%}
    {%- for measure in measures %}
        {%- for days in var('feature_windows_days') %}
    sum(
        case
            when {{ is_in_feature_window(date_column, days) }}
                then {{ measure }}
            else 0
        end
    ) as {{ measure }}_{{ days }}d,
        {%- endfor %}
    {%- endfor %}
{%- endmacro %}
