-- One row per rejected line of any log, with the contract's reason, and one
-- per archive that landing could not read. With the valid rows of
-- int_events_unioned they account for every non-blank landed line.
with

plays as (

    select * from {{ ref('stg_app_logs__plays') }}

),

downloads as (

    select * from {{ ref('stg_app_logs__downloads') }}

),

searches as (

    select * from {{ ref('stg_app_logs__searches') }}

),

rejected_archives as (

    select * from {{ ref('stg_app_logs__rejected_archives') }}

),

rejected_lines as (

    {%- for relation in ['plays', 'downloads', 'searches'] %}

    select
        archive_name,
        line_number,
        cast(null as string) as source_path,
        'line' as rejection_level,
        event_type as log_kind,
        rejection_reason,
        raw_line,
        cast(null as string) as rejection_detail

    from {{ relation }}

    where not is_valid
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

archives as (

    select
        archive_name,
        cast(null as bigint) as line_number,
        source_path,
        'archive' as rejection_level,
        cast(null as string) as log_kind,
        rejection_reason,
        cast(null as string) as raw_line,
        rejection_detail

    from rejected_archives

),

unioned as (

    select * from rejected_lines

    union all

    select * from archives

),

identified as (

    select
        concat_ws(
            ':',
            coalesce(source_path, archive_name),
            cast(line_number as string)
        ) as rejected_row_id,
        *

    from unioned

)

select * from identified
