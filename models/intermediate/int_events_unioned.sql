-- The valid lines of all three logs in one shape: one row per valid line,
-- repeats kept, before bots are removed and users sampled.
--
-- A view, because the staging tables already contain the parsed lines and
-- each reader scans only the columns it needs.
{{ config(materialized="view") }}

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

unioned as (

    select
        archive_name,
        line_number,
        user_id,
        song_id,
        event_type,
        device,
        song_name,
        singer,
        cast(null as string) as search_query,
        play_time,
        song_length,
        event_date

    from plays

    where is_valid

    union all

    select
        archive_name,
        line_number,
        user_id,
        song_id,
        event_type,
        device,
        song_name,
        singer,
        cast(null as string) as search_query,
        cast(null as bigint) as play_time,
        cast(null as bigint) as song_length,
        event_date

    from downloads

    where is_valid

    union all

    select
        archive_name,
        line_number,
        user_id,
        cast(null as bigint) as song_id,
        event_type,
        device,
        cast(null as string) as song_name,
        cast(null as string) as singer,
        search_query,
        cast(null as bigint) as play_time,
        cast(null as bigint) as song_length,
        event_date

    from searches

    where is_valid

)

select * from unioned
