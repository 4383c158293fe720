-- Events per day and kind, before and after cleaning: the valid lines, the
-- events left in fct_events once bots are removed and users sampled, and the
-- day of the week, to see the weekly rhythm and days with missing parts.
with

events_unioned as (

    select * from {{ ref('int_events_unioned') }}

),

events as (

    select * from {{ ref('fct_events') }}

),

valid_counts as (

    select
        event_date,
        event_type,
        count(*) as valid_row_count

    from events_unioned

    group by 1, 2

),

cleaned_counts as (

    select
        event_date,
        event_type,
        count(*) as cleaned_event_count,
        count(distinct user_id) as active_user_count

    from events

    group by 1, 2

),

per_day as (

    select
        valid_counts.event_date,
        date_format(valid_counts.event_date, 'EEEE') as day_of_week,
        valid_counts.event_type,
        valid_counts.valid_row_count,
        coalesce(cleaned_counts.cleaned_event_count, 0) as cleaned_event_count,
        coalesce(cleaned_counts.active_user_count, 0) as active_user_count

    from valid_counts

    left join cleaned_counts
        on
            valid_counts.event_date = cleaned_counts.event_date
            and valid_counts.event_type = cleaned_counts.event_type

)

select *

from per_day

order by 1, 3
