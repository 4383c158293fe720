{#- Date literals of the windows set by the vars feature_window_start, snapshot_date and label_window_days. -#}
{% macro feature_window_start() -%}
    date'{{ var("feature_window_start") }}'
{%- endmacro %}

{% macro snapshot_date() -%}
    date'{{ var("snapshot_date") }}'
{%- endmacro %}

{#- Last day of the label window: label_window_days after the snapshot date. -#}
{% macro label_window_end() -%}
    date_add({{ snapshot_date() }}, {{ var("label_window_days") }})
{%- endmacro %}

{#- True when a date lies in the feature window of the given length in days: the snapshot date and the days - 1 days before it. -#}
{% macro is_in_feature_window(date_expression, days) -%}
    {{ date_expression }} between date_sub({{ snapshot_date() }}, {{ days - 1 }})
    and {{ snapshot_date() }}
{%- endmacro %}

{#- True when a date lies in the whole feature window, from feature_window_start to the snapshot date. -#}
{% macro is_in_feature_period(date_expression) -%}
    {{ date_expression }} between {{ feature_window_start() }} and {{ snapshot_date() }}
{%- endmacro %}
