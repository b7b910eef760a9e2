{% macro dataset_key(fingerprint) -%}
{#- The dataset of a unit (model, revision, dataset): its runs' data_fingerprint, or
    'unspecified' when the manifest or import named none (contract.NO_DATASET). Never NULL, so
    every join on units can use plain equality. -#}
coalesce({{ fingerprint }}, 'unspecified')
{%- endmacro %}
