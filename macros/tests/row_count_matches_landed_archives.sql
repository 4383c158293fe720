{#- Generic test on a landed log table: fails when its row count differs from the line count that landing recorded for the archives of that kind. -#}
{% test row_count_matches_landed_archives(model, log_kind) %}

with

table_rows as (

    select count(*) as row_count

    from {{ model }}

),

recorded_lines as (

    select coalesce(sum(line_count), 0) as line_count

    from {{ source('app_logs', 'landed_archives') }}

    where log_kind = '{{ log_kind }}'

)

select
    table_rows.row_count,
    recorded_lines.line_count

from table_rows

cross join recorded_lines

where table_rows.row_count != recorded_lines.line_count

{% endtest %}
