-- churn_features and churn_labels hold exactly the population: the users of
-- fct_events with at least one event in the feature window. Returns the
-- users where any of the three sets disagree.
with

population as (

    select distinct user_id

    from {{ ref('fct_events') }}

    where {{ is_in_feature_period('event_date') }}

),

features as (

    select user_id from {{ ref('churn_features') }}

),

labels as (

    select user_id from {{ ref('churn_labels') }}

),

membership as (

    select
        coalesce(population.user_id, features.user_id) as user_id,
        population.user_id is not null as is_in_population,
        features.user_id is not null as has_features

    from population

    full outer join features
        on population.user_id = features.user_id

),

with_labels as (

    select
        coalesce(membership.user_id, labels.user_id) as user_id,
        coalesce(membership.is_in_population, false) as is_in_population,
        coalesce(membership.has_features, false) as has_features,
        labels.user_id is not null as has_label

    from membership

    full outer join labels
        on membership.user_id = labels.user_id

)

select *

from with_labels

where not (is_in_population and has_features and has_label)
