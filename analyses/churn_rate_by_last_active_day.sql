-- Churn rate of the population by the day of the user's last event in the
-- feature window: users last seen long before the snapshot date should churn
-- far more often, which is the signal the recency features carry.
with

population as (

    select * from {{ ref('int_users_in_population') }}

),

labels as (

    select * from {{ ref('churn_labels') }}

),

by_last_day as (

    select
        population.last_event_date,
        datediff(
            {{ snapshot_date() }}, population.last_event_date
        ) as days_before_snapshot,
        count(*) as user_count,
        count_if(labels.is_churned) as churned_user_count,
        avg(if(labels.is_churned, 1.0, 0.0)) as churn_rate

    from population

    inner join labels
        on population.user_id = labels.user_id

    group by 1, 2

)

select *

from by_last_day

order by 1
