-- One row per user and song with at least one play or download in
-- fct_events, over all dates: the counts and the implicit rating, the
-- weighted sum of the counts truncated to max_rating.
with

events as (

    select * from {{ ref('fct_events') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

song_events as (

    select
        events.user_id,
        events.song_id,
        events.event_type,
        event_types.rating_weight

    from events

    inner join event_types
        on events.event_type = event_types.event_type

    where
        events.song_id is not null
        and events.event_type in ('play', 'download')

),

rated as (

    select
        user_id,
        song_id,
        count_if(event_type = 'play') as play_count,
        count_if(event_type = 'download') as download_count,
        least(
            sum(rating_weight), cast({{ var('max_rating') }} as double)
        ) as rating

    from song_events

    group by 1, 2

)

select * from rated
