{#- Register the folders written by `musicbox land` as external parquet tables of the landing schema; Spark infers their columns from the files. -#}
{% macro register_landing_tables() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set landing_schema = target.schema ~ '_landing' -%}
    {%- set root = var('landing_path').rstrip('/') -%}
    {#- Spark resolves a relative table location against the schema's folder in
        the warehouse, not against the directory dbt runs in. -#}
    {%- if not root.startswith('/') and ':' not in root.split('/')[0] -%}
        {% do exceptions.raise_compiler_error(
            "landing_path '" ~ root ~ "' is relative, and Spark would look for it inside "
            ~ "the warehouse: set MUSICBOX_DATA_DIR to an absolute folder "
            ~ "(for example export MUSICBOX_DATA_DIR=\"$PWD/data\") or landing_path "
            ~ "to an absolute path or URI"
        ) %}
    {%- endif -%}
    {% do run_query('create database if not exists ' ~ landing_schema) %}
    {%- for table_name in [
        'play_logs',
        'download_logs',
        'search_logs',
        'landed_archives',
        'rejected_archives',
    ] %}
        {#- Dropping an external table keeps its files; recreating it picks up a new landing_path. -#}
        {% do run_query('drop table if exists ' ~ landing_schema ~ '.' ~ table_name) %}
        {% do run_query(
            'create table ' ~ landing_schema ~ '.' ~ table_name
            ~ " using parquet location '" ~ root ~ '/' ~ table_name ~ "'"
        ) %}
    {%- endfor %}
    {{ return('') }}
{% endmacro %}
