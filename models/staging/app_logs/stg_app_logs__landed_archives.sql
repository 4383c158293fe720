-- One row per landed archive with the line counts landing saw.
with

source as (

    select * from {{ source('app_logs', 'landed_archives') }}

),

renamed as (

    select
        -- ids
        archive_name,

        -- strings
        log_kind as event_type,
        member_name,
        archive_sha256,
        source_path,

        -- numerics
        archive_part,
        archive_bytes,
        line_count,
        blank_line_count,
        non_utf8_line_count,

        -- dates
        archive_date as event_date,

        -- timestamps
        landed_at

    from source

)

select * from renamed
