-- Perturbed unit -> its standard (control) unit: same family, n_params and revision, and the
-- same sequences scored with the same setting (dataset, population of seq_idx, prompt and
-- continuation length, EOS rule; plus the mode when labels come from the fractional score).
-- A standard unit that scored other sequences or another setting is never a control.
-- Several qualifying controls: the first by model name is used (n_controls says how many).
with units as (
    select u.model, u.revision, u.dataset, u.family, u.n_params, u.data_fingerprint, u.population_key,
           u.prompt_len, u.cont_len, u.suppress_eos, u.mode, r.role
    from {{ ref('int_units') }} as u
    join {{ ref('int_unit_roles') }} as r using (model, revision)
    where not u.is_sparse and u.data_fingerprint is not null
      and r.role in ('perturbed', 'standard')
)
select
    p.model,
    p.revision,
    p.dataset,
    min(c.model) as control_model,
    p.revision as control_revision,
    count(*) as n_controls
from units as p
join units as c
    on c.role = 'standard' and p.role = 'perturbed'
    and c.family = p.family and c.n_params = p.n_params and c.revision = p.revision
    and c.dataset = p.dataset and c.population_key = p.population_key
    and c.prompt_len = p.prompt_len and c.cont_len = p.cont_len
    and c.suppress_eos is not distinct from p.suppress_eos
    {% if var('label_definition', 'prefix_match') == 'score' %}and c.mode = p.mode{% endif %}
group by p.model, p.revision, p.dataset
