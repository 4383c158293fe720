-- One row per user and day of the feature window with at least one event in
-- fct_events: the day's counts per event type and play-time measures, which
-- churn_features sums over each window.
with

events as (

    select * from {{ ref('fct_events') }}

),

daily as (

    select
        user_id,
        event_date,
        {%- for event_type in var('event_types') %}
        count_if(event_type = '{{ event_type }}') as {{ event_type }}_count,
        {%- endfor %}
        coalesce(
            sum(if(event_type = 'play', play_time, null)), 0
        ) as play_time_total,
        count_if(
            event_type = 'play' and play_time is not null
        ) as timed_play_count,
        count_if(
            event_type = 'play'
            and song_length > 0
            and play_time >= {{ var('engaged_play_ratio') }} * song_length
        ) as engaged_play_count,
        1 as active_day_count

    from events

    where {{ is_in_feature_period('event_date') }}

    group by 1, 2

)

select * from daily
