-- One row per population user: churned when the user has no event of any
-- type in the label window, the label_window_days after the snapshot date.
with

population as (

    select * from {{ ref('int_users_in_population') }}

),

events as (

    select * from {{ ref('fct_events') }}

),

label_window_users as (

    select distinct user_id

    from events

    where
        event_date > {{ snapshot_date() }}
        and event_date <= {{ label_window_end() }}

),

labelled as (

    select
        population.user_id,
        label_window_users.user_id is null as is_churned

    from population

    left join label_window_users
        on population.user_id = label_window_users.user_id

)

select * from labelled
