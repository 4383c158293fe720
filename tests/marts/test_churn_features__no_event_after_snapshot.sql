-- No feature reads an event after the snapshot date: recomputing the
-- 30-day counts and the recency from fct_events restricted to the feature
-- window gives exactly the stored values. Events after the snapshot exist
-- (the label window), so a window that reached past it would differ here.
{%- set widest = var('feature_windows_days') | max %}
with

events as (

    select * from {{ ref('fct_events') }}

),

features as (

    select * from {{ ref('churn_features') }}

),

recomputed as (

    select
        user_id,
        count_if(event_type = 'play') as play_count,
        count_if(event_type = 'download') as download_count,
        count_if(event_type = 'search') as search_count

    from events

    where
        {{ is_in_feature_period('event_date') }}
        and {{ is_in_feature_window('event_date', widest) }}

    group by 1

),

last_event as (

    select
        user_id,
        datediff(
            {{ snapshot_date() }}, max(event_date)
        ) as days_since_last_event

    from events

    where {{ is_in_feature_period('event_date') }}

    group by 1

),

compared as (

    select
        features.user_id,
        features.play_count_{{ widest }}d,
        features.days_since_last_event

    from features

    left join recomputed
        on features.user_id = recomputed.user_id

    left join last_event
        on features.user_id = last_event.user_id

    where
        features.play_count_{{ widest }}d
        != coalesce(recomputed.play_count, 0)
        or features.download_count_{{ widest }}d
        != coalesce(recomputed.download_count, 0)
        or features.search_count_{{ widest }}d
        != coalesce(recomputed.search_count, 0)
        or features.days_since_last_event
        != last_event.days_since_last_event
        or features.days_since_last_event < 0

)

select * from compared
