{#- True when a trimmed text field is made of ASCII digits only and fits a signed 64-bit integer; false for NULL. -#}
{% macro is_unsigned_bigint(expression) -%}
    coalesce(
        {{ expression }} rlike '^[0-9]+$'
        and try_cast({{ expression }} as bigint) is not null,
        false
    )
{%- endmacro %}
