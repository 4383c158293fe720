-- How the bot threshold falls on the distribution of plays per user in the
-- feature window: the count at several percentiles, how many users lie above
-- each, and where the configured bot_percentile cuts. Run with
-- `dbt compile --select bot_threshold_choice` and paste the SQL, or open it
-- in dbt docs.
{%- set ranks = [0.5, 0.9, 0.99, 0.995, var('bot_percentile'), 0.9999] %}
{%- set ranks = ranks | unique | sort %}
with

users_bot_flagged as (

    select * from {{ ref('int_users_bot_flagged') }}

),

percentile_counts as (

    select
        posexplode(
            percentile(
                feature_window_play_count, array({{ ranks | join(', ') }})
            )
        ) as (rank_index, play_count_at_percentile)

    from users_bot_flagged

),

ranked_cuts as (

    select
        element_at(
            array({{ ranks | join(', ') }}), rank_index + 1
        ) as percentile_rank,
        play_count_at_percentile

    from percentile_counts

),

users_above as (

    select
        percentile_counts.percentile_rank,
        percentile_counts.play_count_at_percentile,
        count_if(
            users_bot_flagged.feature_window_play_count
            > percentile_counts.play_count_at_percentile
        ) as users_above_count,
        sum(
            if(
                users_bot_flagged.feature_window_play_count
                > percentile_counts.play_count_at_percentile,
                users_bot_flagged.feature_window_play_count,
                0
            )
        )
        / sum(users_bot_flagged.feature_window_play_count) as play_share_above,
        percentile_counts.percentile_rank
        = {{ var('bot_percentile') }} as is_configured_cut

    from ranked_cuts as percentile_counts

    cross join users_bot_flagged

    group by 1, 2

)

select *

from users_above

order by 1
