-- One row per song played or downloaded in fct_events: its most common name,
-- singer and length in the logs, and how popular it is, so that
-- recommendations can be read by people.
with

events as (

    select * from {{ ref('fct_events') }}

),

song_events as (

    select *

    from events

    where
        song_id is not null
        and event_type in ('play', 'download')

),

songs as (

    select
        -- ids
        song_id,

        -- strings: the most frequent value, ties going to the smallest
        mode(nullif(song_name, ''), true) as song_name,
        mode(nullif(singer, ''), true) as singer,

        -- numerics
        mode(song_length, true) as song_length,
        count_if(event_type = 'play') as play_count,
        count_if(event_type = 'download') as download_count,
        count(distinct user_id) as listener_count

    from song_events

    group by 1

)

select * from songs
