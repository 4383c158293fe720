-- Every non-blank landed line is either a valid event or a rejected row:
-- per log kind, the landed non-blank lines (counted by landing) equal the
-- rows of int_events_unioned plus the line-level rows of rejected_rows.
with

landed as (

    select
        event_type as log_kind,
        sum(line_count - blank_line_count) as non_blank_line_count

    from {{ ref('stg_app_logs__landed_archives') }}

    group by 1

),

valid as (

    select
        event_type as log_kind,
        count(*) as valid_row_count

    from {{ ref('int_events_unioned') }}

    group by 1

),

rejected as (

    select
        log_kind,
        count(*) as rejected_row_count

    from {{ ref('rejected_rows') }}

    where rejection_level = 'line'

    group by 1

),

compared as (

    select
        landed.log_kind,
        landed.non_blank_line_count,
        coalesce(valid.valid_row_count, 0) as valid_row_count,
        coalesce(rejected.rejected_row_count, 0) as rejected_row_count

    from landed

    left join valid
        on landed.log_kind = valid.log_kind

    left join rejected
        on landed.log_kind = rejected.log_kind

)

select *

from compared

where non_blank_line_count != valid_row_count + rejected_row_count
