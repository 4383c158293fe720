{#- The event date of a delivered archive: its name's YYYYMMDD prefix, which the contract makes authoritative over the member name. -#}
{% macro event_date_from_archive(archive_name) -%}
    to_date(substring({{ archive_name }}, 1, 8), 'yyyyMMdd')
{%- endmacro %}
