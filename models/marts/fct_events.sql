-- The cleaned event table: one row per valid line of users who are not bots
-- and who pass the user sample. Identical lines are real repeats and are
-- all kept.
with

events as (

    select * from {{ ref('int_events_unioned') }}

),

users_bot_flagged as (

    select * from {{ ref('int_users_bot_flagged') }}

),

users_sampled as (

    select * from {{ ref('int_users_sampled') }}

),

bots as (

    select user_id

    from users_bot_flagged

    where is_bot

),

sampled_users as (

    select user_id

    from users_sampled

    where is_in_sample

),

cleaned as (

    select
        -- ids
        concat(events.archive_name, ':', events.line_number) as event_id,
        events.user_id,
        events.song_id,
        events.archive_name,
        events.line_number,

        -- strings
        events.event_type,
        events.device,
        events.song_name,
        events.singer,
        events.search_query,

        -- numerics
        events.play_time,
        events.song_length,

        -- dates
        events.event_date

    from events

    inner join sampled_users
        on events.user_id = sampled_users.user_id

    left anti join bots
        on events.user_id = bots.user_id

)

select * from cleaned
