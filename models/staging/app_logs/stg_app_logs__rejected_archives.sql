-- One row per archive file that landing could not read, with the reason.
with

source as (

    select * from {{ source('app_logs', 'rejected_archives') }}

),

renamed as (

    select
        -- ids
        archive_name,

        -- strings
        source_path,
        archive_sha256,
        rejection_reason,
        rejection_detail,

        -- timestamps
        rejected_at

    from source

)

select * from renamed
