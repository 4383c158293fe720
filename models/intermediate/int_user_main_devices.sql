-- One row per user with a known device in the feature window: the device
-- with the most events there, ties going to the alphabetically first.
with

events as (

    select * from {{ ref('fct_events') }}

),

device_counts as (

    select
        user_id,
        device,
        count(*) as event_count

    from events

    where
        device is not null
        and {{ is_in_feature_period('event_date') }}

    group by 1, 2

),

ranked as (

    select
        user_id,
        device,
        row_number() over (
            partition by user_id
            order by event_count desc, device asc
        ) as device_rank

    from device_counts

),

main_devices as (

    select
        user_id,
        device as main_device

    from ranked

    where device_rank = 1

)

select * from main_devices
