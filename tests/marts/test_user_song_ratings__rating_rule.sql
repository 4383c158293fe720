-- Every rating lies in [0, max_rating] and equals the weighted sum of its
-- counts truncated to max_rating, with the weights of the event_types seed.
with

ratings as (

    select * from {{ ref('user_song_ratings') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

weights as (

    select
        max(if(event_type = 'play', rating_weight, null)) as play_weight,
        max(if(event_type = 'download', rating_weight, null)) as download_weight

    from event_types

),

violations as (

    select
        ratings.user_id,
        ratings.song_id,
        ratings.play_count,
        ratings.download_count,
        ratings.rating

    from ratings

    cross join weights

    where
        ratings.rating < 0
        or ratings.rating > {{ var('max_rating') }}
        or abs(
            ratings.rating
            - least(
                ratings.play_count * weights.play_weight
                + ratings.download_count * weights.download_weight,
                {{ var('max_rating') }}
            )
        ) > 1e-9

)

select * from violations
