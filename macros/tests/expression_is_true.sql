{#- Generic test: fails on rows where a boolean SQL expression over the model's columns is not true (false or NULL). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *

from {{ model }}

where not coalesce({{ expression }}, false)

{% endtest %}
