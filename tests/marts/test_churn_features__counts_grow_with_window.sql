-- A longer window covers a shorter one, so no windowed count or total may
-- decrease as the window grows. Returns each user, measure and pair of
-- consecutive windows where it does.
{%- set windows = var('feature_windows_days') | sort %}
{%- set measures = event_count_measures() %}
{%- do measures.extend([
    'play_time_total',
    'engaged_play_count',
    'active_day_count',
    'distinct_song_count',
]) %}
with

features as (

    select * from {{ ref('churn_features') }}

),

decreases as (

    {%- for measure in measures %}
    {%- set measure_loop = loop %}
    {%- for days in windows[1:] %}
    {%- set shorter = windows[loop.index0] %}

    select
        user_id,
        '{{ measure }}' as measure,
        {{ shorter }} as shorter_window_days,
        {{ days }} as longer_window_days

    from features

    where {{ measure }}_{{ days }}d < {{ measure }}_{{ shorter }}d
    {%- if not (loop.last and measure_loop.last) %}

    union all
    {%- endif %}
    {%- endfor %}
    {%- endfor %}

)

select * from decreases
