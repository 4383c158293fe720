{#-
    Generic test on a model with window columns (`<measure>_<N>d`): fails on
    rows where any such column, for the given measures, is NULL or negative.
    One query covers every window, so adding a window adds no test.
-#}
{% test windowed_columns_are_counts(model, measures) %}

select *

from {{ model }}

where
    false
    {%- for measure in measures %}
    {%- for days in var('feature_windows_days') %}
    or coalesce({{ measure }}_{{ days }}d < 0, true)
    {%- endfor %}
    {%- endfor %}

{% endtest %}
