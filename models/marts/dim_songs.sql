-- One row per song played or downloaded in fct_events: its most common name,
-- singer and length in the logs, and how popular it is, so that
-- recommendations can be read by people.
with

events as (

    select * from {{ ref('fct_events') }}

),

ratings as (

    select * from {{ ref('user_song_ratings') }}

),

-- One pass over the events: how often each spelling of a song occurs. The
-- attributes below are picked from this small table, not from the events.
song_variants as (

    select
        song_id,
        nullif(song_name, '') as song_name,
        nullif(singer, '') as singer,
        song_length,
        count(*) as event_count

    from events

    where
        song_id is not null
        and event_type in ('play', 'download')

    group by 1, 2, 3, 4

),

{%- for attribute in ['song_name', 'singer', 'song_length'] %}

{{ attribute }}_ranked as (

    select
        song_id,
        {{ attribute }},
        row_number() over (
            partition by song_id
            order by sum(event_count) desc, {{ attribute }} asc
        ) as attribute_rank

    from song_variants

    where {{ attribute }} is not null

    group by 1, 2

),
{%- endfor %}

popularity as (

    select
        song_id,
        sum(play_count) as play_count,
        sum(download_count) as download_count,
        count(*) as listener_count

    from ratings

    group by 1

),

songs as (

    select
        -- ids
        popularity.song_id,

        -- strings: the most frequent known value, ties going to the smallest
        song_name_ranked.song_name,
        singer_ranked.singer,

        -- numerics
        song_length_ranked.song_length,
        popularity.play_count,
        popularity.download_count,
        popularity.listener_count

    from popularity

    left join song_name_ranked
        on
            popularity.song_id = song_name_ranked.song_id
            and song_name_ranked.attribute_rank = 1

    left join singer_ranked
        on
            popularity.song_id = singer_ranked.song_id
            and singer_ranked.attribute_rank = 1

    left join song_length_ranked
        on
            popularity.song_id = song_length_ranked.song_id
            and song_length_ranked.attribute_rank = 1

)

select * from songs
