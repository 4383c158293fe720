{#-
    Table materialization for Spark that keeps the last good table until its
    replacement is complete. dbt-spark drops a parquet table before creating
    it again, so a failing rebuild would leave nothing; here the new table is
    built beside the old one (suffix __dbt_new), and only then swapped in with
    two renames. A failing select therefore leaves the previous table intact.
-#}
{% materialization table, adapter='spark', supported_languages=['sql'] %}
    {%- set identifier = model['alias'] -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set old_relation = adapter.get_relation(
        database=database, schema=schema, identifier=identifier
    ) -%}
    {%- set target_relation = api.Relation.create(
        identifier=identifier, schema=schema, database=database, type='table'
    ) -%}
    {%- set new_relation = api.Relation.create(
        identifier=identifier ~ '__dbt_new', schema=schema, database=database, type='table'
    ) -%}
    {%- set backup_relation = api.Relation.create(
        identifier=identifier ~ '__dbt_backup', schema=schema, database=database, type='table'
    ) -%}

    {#- Leftovers of an interrupted run, including files of a table that was never registered. -#}
    {% do adapter.drop_relation(new_relation) %}
    {% do adapter.drop_relation(backup_relation) %}
    {% do remove_orphaned_location(new_relation) %}
    {#- A folder under the model's own name without a table (a lost metastore, a
        crash between the two renames) would block the final rename. -#}
    {% if old_relation is none %}
        {% do remove_orphaned_location(target_relation) %}
    {% endif %}

    {{ run_hooks(pre_hooks) }}

    {%- call statement('main') -%}
        {{ create_table_as(False, new_relation, compiled_code) }}
    {%- endcall -%}

    {% if old_relation is not none %}
        {% if old_relation.type == 'view' %}
            {% do adapter.drop_relation(old_relation) %}
        {% else %}
            {% do adapter.rename_relation(old_relation, backup_relation) %}
        {% endif %}
    {% endif %}
    {% do adapter.rename_relation(new_relation, target_relation) %}
    {% do adapter.drop_relation(backup_relation) %}

    {% set should_revoke = should_revoke(old_relation, full_refresh_mode=True) %}
    {% do apply_grants(target_relation, grant_config, should_revoke) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
