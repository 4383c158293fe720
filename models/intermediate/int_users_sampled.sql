-- One row per user with a valid event: the user's deterministic sample
-- position in [0, 1) and whether it falls inside user_sample_ratio. The
-- position depends on the user id alone, so a user is in or out of the
-- sample on every run and for every event.
with

events as (

    select * from {{ ref('int_events_unioned') }}

),

users as (

    select distinct user_id

    from events

),

positioned as (

    select
        user_id,
        pmod(xxhash64(user_id), 1000000) / 1000000.0 as sample_position

    from users

),

sampled as (

    select
        user_id,
        sample_position,
        sample_position < {{ var('user_sample_ratio') }} as is_in_sample

    from positioned

)

select * from sampled
