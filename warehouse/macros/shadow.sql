{# Shadow-model populations (docs/shadow.md): the Gaussian tail used by offline LiRA. #}

{% macro _horner(x, coefs, leading_one=false) -%}
{#- c0 x^n + ... + cn by Horner's rule (with leading_one: x^(n+1) + c0 x^n + ... + cn). -#}
{%- set ns = namespace(expr=('(' ~ x ~ ' + ' ~ coefs[0] ~ ')') if leading_one else coefs[0]) -%}
{%- for c in coefs[1:] -%}
  {%- set ns.expr = '(' ~ ns.expr ~ ' * ' ~ x ~ ' + ' ~ c ~ ')' -%}
{%- endfor -%}
{{ ns.expr }}
{%- endmacro %}

{% macro _erfc_ratio(y) -%}
{#- erfc(y) / exp(-y^2) for y >= 1: Cephes' rational approximations (ndtr.c, S. Moshier; the
    coefficients SciPy's erfc uses), relative error ~1e-16. -#}
{%- set P = ['2.46196981473530512524E-10', '5.64189564831068821977E-1', '7.46321056442269912687E0',
             '4.86371970985681366614E1', '1.96520832956077098242E2', '5.26445194995477358631E2',
             '9.34528527171957607540E2', '1.02755188689515710272E3', '5.57535335369399327526E2'] -%}
{%- set Q = ['1.32281951154744992508E1', '8.67072140885989742329E1', '3.54937778887819891062E2',
             '9.75708501743205489753E2', '1.82390916687909736289E3', '2.24633760818710981792E3',
             '1.65666309194161350182E3', '5.57535340817727675546E2'] -%}
{%- set R = ['5.64189583547755073984E-1', '1.27536670759978104416E0', '5.01905042251180477414E0',
             '6.16021097993053585195E0', '7.40974269950448939160E0', '2.97886665372100240670E0'] -%}
{%- set S = ['2.26052863220117276590E0', '9.39603524938001434673E0', '1.20489539808096656605E1',
             '1.70814450747565897222E1', '9.60896809063285878198E0', '3.36907645100081516050E0'] -%}
case when {{ y }} < 8 then {{ _horner(y, P) }} / {{ _horner(y, Q, true) }}
     else {{ _horner(y, R) }} / {{ _horner(y, S, true) }} end
{%- endmacro %}

{% macro _erf_small(x) -%}
{#- erf(x) for |x| < 1 (Cephes): x T(x^2) / U(x^2). -#}
{%- set T = ['9.60497373987051638749E0', '9.00260197203842689217E1', '2.23200534594684319226E3',
             '7.00332514112805075473E3', '5.55923013010394962768E4'] -%}
{%- set U = ['3.35617141647503099647E1', '5.21357949780152679795E2', '4.59432382970980127987E3',
             '2.26290000613890934246E4', '4.92673942608635921086E4'] -%}
({{ x }} * {{ _horner('(' ~ x ~ ' * ' ~ x ~ ')', T) }} / {{ _horner('(' ~ x ~ ' * ' ~ x ~ ')', U, true) }})
{%- endmacro %}

{% macro neg_log_normal_sf(z) -%}
{#- -ln(1 - Phi(z)) for a standard normal z (a column or simple expression: it is repeated),
    stable over the whole line: with x = z / sqrt(2), 1 - Phi(z) = erfc(x) / 2 and, for
    x >= 1, ln erfc(x) = -x^2 + ln(erfc(x) e^{x^2}) is computed without forming e^{-x^2}, so
    z = 40 or 400 keep full relative precision (the member tail that TPR at low FPR ranks).
    Equals -scipy.special.log_ndtr(-z). NULL in, NULL out. -#}
{%- set x = '((' ~ z ~ ') * 0.7071067811865476)' -%}
{%- set y = '(-' ~ x ~ ')' -%}
case
    when {{ x }} >= 1 then ln(2) + {{ x }} * {{ x }} - ln({{ _erfc_ratio(x) }})
    when {{ x }} > -1 then ln(2) - ln(1 - {{ _erf_small(x) }})
    else -ln(1 - 0.5 * exp(-{{ x }} * {{ x }}) * ({{ _erfc_ratio(y) }}))
end
{%- endmacro %}
