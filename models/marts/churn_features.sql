-- One row per population user: event counts per type and feature window,
-- days since the last event of each type, and further activity features,
-- all computed from events up to and including the snapshot date.
{%- set count_measures = event_count_measures() %}
with

population as (

    select * from {{ ref('int_users_in_population') }}

),

daily_activity as (

    select * from {{ ref('int_user_daily_activity') }}

),

songs_last_played as (

    select * from {{ ref('int_user_songs_last_played') }}

),

main_devices as (

    select * from {{ ref('int_user_main_devices') }}

),

activity_windowed as (

    select
        user_id,
        {{ windowed_sums(count_measures + [
            'play_time_total',
            'timed_play_count',
            'engaged_play_count',
            'active_day_count',
        ]) }}
        {%- for event_type in var('event_types') %}
        max(if({{ event_type }}_count > 0, event_date, null))
            as last_{{ event_type }}_date,
        {%- endfor %}
        max(event_date) as last_event_date

    from daily_activity

    group by 1

),

songs_windowed as (

    select
        user_id,
        {{ windowed_sums(['distinct_song_count'], 'last_played_date') }}
        count(*) as feature_window_song_count

    from songs_last_played

    group by 1

),

features as (

    select
        -- ids
        population.user_id,

        -- event counts per type and window
        {{ windowed_columns(count_measures, 'activity_windowed') }}

        -- recency in days before the snapshot date, NULL when never seen
        {%- for event_type in var('event_types') %}
        datediff(
            {{ snapshot_date() }}, activity_windowed.last_{{ event_type }}_date
        ) as days_since_last_{{ event_type }},
        {%- endfor %}
        datediff(
            {{ snapshot_date() }}, activity_windowed.last_event_date
        ) as days_since_last_event,

        -- further activity features per window
        {{ windowed_columns(
            ['play_time_total', 'engaged_play_count', 'active_day_count'],
            'activity_windowed'
        ) }}
        {%- for days in var('feature_windows_days') %}
        activity_windowed.play_time_total_{{ days }}d
        / nullif(activity_windowed.timed_play_count_{{ days }}d, 0)
            as play_time_avg_{{ days }}d,
        {%- endfor %}
        {{ windowed_columns(
            ['distinct_song_count'], 'songs_windowed', zero_when_missing=true
        ) }}

        -- strings
        main_devices.main_device

    from population

    inner join activity_windowed
        on population.user_id = activity_windowed.user_id

    left join songs_windowed
        on population.user_id = songs_windowed.user_id

    left join main_devices
        on population.user_id = main_devices.user_id

)

select * from features
