-- One row per non-blank line of the search logs, checked against the data
-- contract's rules in their order. Typed columns are filled for valid lines
-- only; a rejected line keeps its reason, archive and raw text.
--
-- A table rather than a view, because it is the one pass over the landed
-- lines: every later model and test reads its typed columns, not the raw ones.
{{ config(materialized='table') }}

with

source as (

    select * from {{ source('app_logs', 'search_logs') }}

),

trimmed as (

    select
        archive_name,
        line_number,
        raw_line,
        field_count,
        {{ trim_whitespace('uid') }} as uid,
        {{ trim_whitespace('device') }} as device,
        {{ trim_whitespace('time_stamp') }} as time_stamp,
        {{ trim_whitespace('search_query') }} as search_query

    from source

    where {{ trim_whitespace('raw_line') }} != ''

),

checked as (

    select
        *,
        case
            when field_count != 4 then 'malformed_line'
            when
                not {{ is_unsigned_bigint('uid') }}
                or try_cast(uid as bigint) = 0
                then 'invalid_uid'
        end as rejection_reason

    from trimmed

),

typed as (

    select
        -- ids
        archive_name,
        line_number,
        {{ if_valid('try_cast(uid as bigint)') }} as user_id,

        -- strings
        'search' as event_type,
        {{ if_valid("nullif(lower(device), '')") }} as device,
        {{ if_valid('time_stamp') }} as search_time_stamp,
        {{ if_valid('search_query') }} as search_query,
        {{ if_rejected('raw_line') }} as raw_line,
        rejection_reason,

        -- booleans
        rejection_reason is null as is_valid,

        -- dates
        {{ event_date_from_archive('archive_name') }} as event_date

    from checked

)

select * from typed
