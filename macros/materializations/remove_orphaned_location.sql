{#-
    Delete the folder at the default location of the managed table `relation`
    when no table owns it. A build that wrote the files of a table but failed
    to register it (the metastore went down between the two steps, or the
    process was killed) leaves such a folder, and Spark refuses to create a
    managed table over a non-empty folder (LOCATION_ALREADY_EXISTS), so every
    later build of the model would fail. Spark SQL cannot delete a folder, but
    dropping a managed table deletes its location. So one row is written into
    the folder, which creates it when missing (Hive logs an error when it
    deletes a missing folder, and Spark a stack trace when it reads a table
    whose folder is missing). Then a placeholder table `<identifier>__dbt_sweep`
    is pointed at the folder and dropped, and it is created and dropped once
    more to remove its own folder.
    Call it only for a relation that has just been dropped.
-#}
{% macro remove_orphaned_location(relation) %}
    {%- set sweep = api.Relation.create(
        schema=relation.schema, identifier=relation.identifier ~ '__dbt_sweep', type='table'
    ) -%}
    {% do run_query('drop table if exists ' ~ sweep) %}
    {% do run_query('create table ' ~ sweep ~ ' (placeholder int) using parquet') %}
    {%- set described = run_query('describe formatted ' ~ sweep) -%}
    {%- set found = namespace(location=none) -%}
    {%- for row in described.rows -%}
        {%- if (row[0] or '') | trim == 'Location' -%}
            {%- set found.location = row[1] | trim -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if found.location is none -%}
        {% do exceptions.raise_compiler_error(
            'describe formatted ' ~ sweep ~ ' returned no Location row'
        ) %}
    {%- endif -%}
    {#- Spark names a managed table's folder after the lower-cased table name. -#}
    {%- set orphan = found.location.rsplit('/', 1)[0] ~ '/' ~ (relation.identifier | lower) -%}
    {% do run_query(
        "insert overwrite directory '" ~ orphan ~ "' using parquet select 0 as placeholder"
    ) %}
    {% do run_query('alter table ' ~ sweep ~ " set location '" ~ orphan ~ "'") %}
    {% do run_query('drop table ' ~ sweep) %}
    {% do run_query('create table ' ~ sweep ~ ' (placeholder int) using parquet') %}
    {% do run_query('drop table ' ~ sweep) %}
{% endmacro %}
