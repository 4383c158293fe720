-- One row per non-blank line of the play logs, checked against the data
-- contract's rules in their order. Typed columns are filled for valid lines
-- only; a rejected line keeps its reason, archive and raw text.
--
-- A table rather than a view, because it is the one pass over the landed
-- lines: every later model and test reads its typed columns, not the raw ones.
{{ config(materialized='table') }}

with

source as (

    select * from {{ source('app_logs', 'play_logs') }}

),

trimmed as (

    select
        archive_name,
        line_number,
        raw_line,
        field_count,
        {{ trim_whitespace('uid') }} as uid,
        {{ trim_whitespace('device') }} as device,
        {{ trim_whitespace('song_id') }} as song_id,
        {{ trim_whitespace('song_type') }} as song_type,
        {{ trim_whitespace('song_name') }} as song_name,
        {{ trim_whitespace('singer') }} as singer,
        {{ trim_whitespace('play_time') }} as play_time,
        {{ trim_whitespace('song_length') }} as song_length,
        {{ trim_whitespace('paid_flag') }} as paid_flag

    from source

    where {{ trim_whitespace('raw_line') }} != ''

),

checked as (

    select
        *,
        case
            when field_count != 9 then 'malformed_line'
            when
                not {{ is_unsigned_bigint('uid') }}
                or try_cast(uid as bigint) = 0
                then 'invalid_uid'
            when not {{ is_unsigned_bigint('song_id') }} then 'invalid_song_id'
            when
                not (
                    play_time = '' or {{ is_unsigned_bigint('play_time') }}
                )
                or not (
                    song_length = '' or {{ is_unsigned_bigint('song_length') }}
                )
                then 'invalid_duration'
        end as rejection_reason

    from trimmed

),

typed as (

    select
        -- ids
        archive_name,
        line_number,
        {{ if_valid('try_cast(uid as bigint)') }} as user_id,
        {{ if_valid('nullif(try_cast(song_id as bigint), 0)') }} as song_id,

        -- strings
        'play' as event_type,
        {{ if_valid("nullif(lower(device), '')") }} as device,
        {{ if_valid('song_type') }} as song_type,
        {{ if_valid('song_name') }} as song_name,
        {{ if_valid('singer') }} as singer,
        {{ if_valid('paid_flag') }} as paid_flag,
        {{ if_rejected('raw_line') }} as raw_line,
        rejection_reason,

        -- numerics
        {{ if_valid("try_cast(nullif(play_time, '') as bigint)") }}
            as play_time,
        {{ if_valid("try_cast(nullif(song_length, '') as bigint)") }}
            as song_length,

        -- booleans
        rejection_reason is null as is_valid,

        -- dates
        {{ event_date_from_archive('archive_name') }} as event_date

    from checked

)

select * from typed
