{#-
    Fails with every row of device_features_daily_transformed dated on or after the first fitted
    state's date that has no state applied (only rows before the training window may lack one),
    or whose state is not the latest one fitted up to its feature_date.
-#}

with

states as (

    select distinct fit_end_date, state_version
    from {{ ref('feature_transformer_state') }}

),

expected as (

    select
        transformed.appmetrica_device_id,
        transformed.feature_date,
        transformed.state_version,
        states.state_version as expected_state_version

    from {{ ref('device_features_daily_transformed') }} as transformed
    asof left join states
        on transformed.feature_date >= states.fit_end_date

),

final as (

    select *
    from expected
    where state_version is distinct from expected_state_version

)

select * from final
