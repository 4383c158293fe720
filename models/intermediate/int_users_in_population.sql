-- One row per user of the cleaned event table with at least one event of
-- any type in the feature window: the users that churn is predicted for.
with

events as (

    select * from {{ ref('fct_events') }}

),

population as (

    select
        user_id,
        min(event_date) as first_event_date,
        max(event_date) as last_event_date

    from events

    where {{ is_in_feature_period('event_date') }}

    group by 1

)

select * from population
