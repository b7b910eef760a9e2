{# 95% intervals shared by the marts. The Wilson bound of a proportion is wilson_bound()
   (macros/labels.sql), used by every rate. #}

{% macro t975(df) -%}
{#- Student t 0.975 quantile for df degrees of freedom: the seed t_quantiles (df 1..1000,
    mpmath, scripts/gen_t_quantiles.py) and above it the Cornish-Fisher expansion of
    Abramowitz & Stegun 26.7.5 to 1/df^4 (truncation error < 1e-13 for df > 1000). NULL for df < 1.
    Every constant is a DOUBLE: DuckDB would type decimal literals as DECIMAL and overflow. -#}
{%- set z = '(1.959963984540054::double)' -%}
{%- set v = '((' ~ df ~ ')::double)' -%}
case when ({{ df }}) >= 1 then coalesce(
    (select q.t975 from {{ ref('t_quantiles') }} as q where q.df = ({{ df }})),
    {{ z }}
      + (pow({{ z }}, 3) + {{ z }}) / (4.0::double * {{ v }})
      + (5.0::double * pow({{ z }}, 5) + 16.0::double * pow({{ z }}, 3) + 3.0::double * {{ z }})
        / (96.0::double * pow({{ v }}, 2))
      + (3.0::double * pow({{ z }}, 7) + 19.0::double * pow({{ z }}, 5)
         + 17.0::double * pow({{ z }}, 3) - 15.0::double * {{ z }}) / (384.0::double * pow({{ v }}, 3))
      + (79.0::double * pow({{ z }}, 9) + 776.0::double * pow({{ z }}, 7)
         + 1482.0::double * pow({{ z }}, 5) - 1920.0::double * pow({{ z }}, 3)
         - 945.0::double * {{ z }}) / (92160.0::double * pow({{ v }}, 4)))
end
{%- endmacro %}

{% macro t_bound(mean, sd, n, sign) -%}
{#- mean +- t(0.975, n - 1) * sd / sqrt(n): the t 95% interval of a mean; NULL when n < 2. -#}
case when ({{ n }}) >= 2 then ({{ mean }}) {{ sign }} {{ t975('(' ~ n ~ ') - 1') }} * ({{ sd }}) / sqrt({{ n }}) end
{%- endmacro %}

{% macro paired_rate_diff_bound(n11, n10, n01, n00, sign) -%}
{#- Newcombe (1998, Stat Med 17:2635) method 10 for the difference p1 - p2 of two proportions
    measured on the same items: p1 = (n11 + n10) / n, p2 = (n11 + n01) / n; Wilson limits
    l_i, u_i of each, and phi = (n11 n00 - n10 n01) / sqrt of the product of the four margins
    (0 when a margin is 0). lower = d - sqrt((p1-l1)^2 - 2 phi (p1-l1)(u2-p2) + (u2-p2)^2),
    upper = d + sqrt((u1-p1)^2 - 2 phi (u1-p1)(p2-l2) + (p2-l2)^2). NULL when n = 0. -#}
{%- set n = '((' ~ n11 ~ ') + (' ~ n10 ~ ') + (' ~ n01 ~ ') + (' ~ n00 ~ '))' -%}
{%- set k1 = '((' ~ n11 ~ ') + (' ~ n10 ~ '))' -%}
{%- set k2 = '((' ~ n11 ~ ') + (' ~ n01 ~ '))' -%}
{%- set p1 = '(' ~ k1 ~ '::double / ' ~ n ~ ')' -%}
{%- set p2 = '(' ~ k2 ~ '::double / ' ~ n ~ ')' -%}
{%- set margins = '(' ~ k1 ~ '::double * ((' ~ n01 ~ ') + (' ~ n00 ~ ')) * ' ~ k2 ~ ' * ((' ~ n10 ~ ') + (' ~ n00 ~ ')))' -%}
{%- set phi = '(case when ' ~ margins ~ ' > 0 then ((' ~ n11 ~ ')::double * (' ~ n00 ~ ') - (' ~ n10 ~ ')::double * (' ~ n01 ~ ')) / sqrt(' ~ margins ~ ') else 0 end)' -%}
{%- if sign == '-' -%}
  {%- set a = '(' ~ p1 ~ ' - ' ~ wilson_bound(k1, n, '-') ~ ')' -%}
  {%- set b = '(' ~ wilson_bound(k2, n, '+') ~ ' - ' ~ p2 ~ ')' -%}
{%- else -%}
  {%- set a = '(' ~ wilson_bound(k1, n, '+') ~ ' - ' ~ p1 ~ ')' -%}
  {%- set b = '(' ~ p2 ~ ' - ' ~ wilson_bound(k2, n, '-') ~ ')' -%}
{%- endif -%}
case when {{ n }} > 0 then
    {{ p1 }} - {{ p2 }} {{ sign }} sqrt(greatest(0.0, {{ a }} * {{ a }} - 2 * {{ phi }} * {{ a }} * {{ b }} + {{ b }} * {{ b }}))
end
{%- endmacro %}

{% macro power_of_two_bin(duplicates) -%}
{#- Count -> bin: 0, else the largest power of two <= the count (1, 2, 4, 8, ...). For copy
    counts, Hubble's 0/1/4/16/64/256 and the demo's 1/2/4/.../256 ladders are one count per bin. -#}
case when ({{ duplicates }}) is null then null
     when ({{ duplicates }}) <= 0 then 0::bigint
     else pow(2, floor(log2(({{ duplicates }})::double)))::bigint
end
{%- endmacro %}

{% macro rate_and_loss_with_intervals(c) -%}
{#- a cell's memorization rate with its Wilson 95% bounds and mean loss with its t 95% bounds,
    from n_scored, n_memorized, n_loss, mean_loss, sd_loss (the controlled marts' cells) -#}
{{ c }}.n_scored,
    {{ c }}.n_memorized,
    {{ c }}.n_memorized::double / {{ c }}.n_scored as memorization_rate,
    {{ wilson_bound(c ~ '.n_memorized', c ~ '.n_scored', '-') }} as memorization_rate_lo,
    {{ wilson_bound(c ~ '.n_memorized', c ~ '.n_scored', '+') }} as memorization_rate_hi,
    {{ c }}.n_loss,
    {{ c }}.mean_loss,
    {{ t_bound(c ~ '.mean_loss', c ~ '.sd_loss', c ~ '.n_loss', '-') }} as mean_loss_lo,
    {{ t_bound(c ~ '.mean_loss', c ~ '.sd_loss', c ~ '.n_loss', '+') }} as mean_loss_hi
{%- endmacro %}
