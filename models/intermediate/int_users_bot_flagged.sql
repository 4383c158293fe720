-- One row per user with at least one valid play in the feature window: the
-- play count there, the bot threshold (the bot_percentile of those counts,
-- interpolated linearly between ranks) and whether the user is above it.
with

events as (

    select * from {{ ref('int_events_unioned') }}

),

feature_window_play_counts as (

    select
        user_id,
        count(*) as feature_window_play_count

    from events

    where
        event_type = 'play'
        and {{ is_in_feature_period('event_date') }}

    group by 1

),

threshold as (

    select
        percentile(
            feature_window_play_count, {{ var('bot_percentile') }}
        ) as bot_play_threshold

    from feature_window_play_counts

),

flagged as (

    select
        feature_window_play_counts.user_id,
        feature_window_play_counts.feature_window_play_count,
        threshold.bot_play_threshold,
        feature_window_play_counts.feature_window_play_count
        > threshold.bot_play_threshold as is_bot

    from feature_window_play_counts

    cross join threshold

)

select * from flagged
