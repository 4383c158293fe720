-- One row per user and song played in the feature window: the last day of
-- play, from which churn_features counts distinct songs per window.
with

events as (

    select * from {{ ref('fct_events') }}

),

last_played as (

    select
        user_id,
        song_id,
        max(event_date) as last_played_date,
        1 as distinct_song_count

    from events

    where
        event_type = 'play'
        and song_id is not null
        and {{ is_in_feature_period('event_date') }}

    group by 1, 2

)

select * from last_played
