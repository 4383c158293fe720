{#- Strip surrounding white space from a text expression: the characters Python's str.strip() removes, tab and carriage return among them. -#}
{% macro trim_whitespace(expression) -%}
    trim(both '{{ whitespace_characters() }}' from {{ expression }})
{%- endmacro %}

{#- The white space set as a Spark SQL string body with \u escapes. -#}
{% macro whitespace_characters() -%}
    {{- ' \\t\\n\\u000B\\u000C\\r\\u001C\\u001D\\u001E\\u001F\\u0085\\u00A0\\u1680' -}}
    {{- '\\u2000\\u2001\\u2002\\u2003\\u2004\\u2005\\u2006\\u2007\\u2008\\u2009\\u200A' -}}
    {{- '\\u2028\\u2029\\u202F\\u205F\\u3000' -}}
{%- endmacro %}
