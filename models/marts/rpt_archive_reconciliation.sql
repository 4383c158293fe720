-- One row per landed archive: its non-blank lines as counted by landing, and
-- how many became valid rows (int_events_unioned) and rejected rows. The two
-- must add up. The test on is_reconciled fails the build when a line went
-- missing or when parsed lines belong to no landed archive.
with

landed_archives as (

    select * from {{ ref('stg_app_logs__landed_archives') }}

),

events_unioned as (

    select * from {{ ref('int_events_unioned') }}

),

rejected_rows as (

    select * from {{ ref('rejected_rows') }}

),

parsed_lines as (

    select
        archive_name,
        true as is_valid

    from events_unioned

    union all

    select
        archive_name,
        false as is_valid

    from rejected_rows

    where rejection_level = 'line'

),

parsed_counts as (

    select
        archive_name,
        count_if(is_valid) as valid_row_count,
        count_if(not is_valid) as rejected_row_count

    from parsed_lines

    group by 1

),

reconciled as (

    select
        -- ids
        coalesce(
            landed_archives.archive_name, parsed_counts.archive_name
        ) as archive_name,

        -- strings
        landed_archives.event_type as log_kind,

        -- numerics
        landed_archives.line_count,
        landed_archives.blank_line_count,
        landed_archives.line_count
        - landed_archives.blank_line_count as non_blank_line_count,
        coalesce(parsed_counts.valid_row_count, 0) as valid_row_count,
        coalesce(parsed_counts.rejected_row_count, 0) as rejected_row_count,

        -- booleans
        coalesce(
            landed_archives.line_count - landed_archives.blank_line_count
            = coalesce(parsed_counts.valid_row_count, 0)
            + coalesce(parsed_counts.rejected_row_count, 0),
            false
        ) as is_reconciled,

        -- dates
        landed_archives.event_date

    from landed_archives

    full outer join parsed_counts
        on landed_archives.archive_name = parsed_counts.archive_name

)

select * from reconciled
