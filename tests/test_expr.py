"""The safe expression grammar: parsing, limits, error messages and printing back."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modreg
from modreg.errors import InvalidExpression
from modreg.spec.expr import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Dot,
    Norm,
    format_expression,
    parse_expression,
)

NAMES = ["x", "y", "z", "m1", "G", "v_x"]
x, y, z = (sp.Symbol(n, real=True) for n in "xyz")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(text: str) -> sp.Expr:
    return parse_expression(text, NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x + y*z", x + y * z),
        ("-x**2", -(x**2)),
        ("(-x)**2", x**2),
        ("2**3**2", sp.Integer(512)),
        ("2**-x", 2 ** (-x)),
        ("x - -y", x + y),
        ("+x", x),
        ("x/y/z", x / (y * z)),
        ("x/2", x / 2),
        ("1/2", sp.Rational(1, 2)),
        ("0.5*x", sp.Float(0.5) * x),
        ("1e-5 * x", sp.Float(1e-5) * x),
        ("1.5E+3", sp.Float(1500.0)),
        (".25", sp.Float(0.25)),
        ("6.674e-11", sp.Float(6.674e-11)),
        ("sqrt(x)", sp.sqrt(x)),
        ("x**(1/3)", x ** sp.Rational(1, 3)),
        ("exp(1)", sp.E),
        ("pi * x", sp.pi * x),
        ("abs(x)", sp.Abs(x)),
        ("log(x) + sin(y) * cos(z) - tan(x)", sp.log(x) + sp.sin(y) * sp.cos(z) - sp.tan(x)),
        ("asin(x) + acos(y) + atan(z)", sp.asin(x) + sp.acos(y) + sp.atan(z)),
        ("sinh(x) + cosh(y) + tanh(z)", sp.sinh(x) + sp.cosh(y) + sp.tanh(z)),
        ("norm(x)", Norm(x)),
        ("dot(x, y)", Dot(x, y)),
        ("  x\t+\ny  ", x + y),
        ("v_x * m1", sp.Symbol("v_x", real=True) * sp.Symbol("m1", real=True)),
        ("x**64", x**64),
        ("9" * 300, sp.Integer(int("9" * 300))),
    ],
)
def test_good_expressions(text: str, expected: sp.Expr) -> None:
    assert parse(text) == expected


def test_symbols_are_real() -> None:
    assert parse("x").is_real
    assert parse("sqrt(x**2)") == sp.Abs(x)


def test_names_outside_the_list_are_unknown() -> None:
    with pytest.raises(InvalidExpression, match=r"unknown name 'q'.*available here are: x, pi"):
        parse_expression("q", ["x"])


@pytest.mark.parametrize("text", ["E", "I", "e", "oo", "nan", "inf", "N", "S", "Symbol"])
def test_no_sympy_magic_names(text: str) -> None:
    with pytest.raises(InvalidExpression, match="unknown name"):
        parse(text)


SPECIAL = ["E", "I", "S", "N", "Q", "O", "beta", "gamma", "zeta", "oo", "nan", "inf", "Symbol"]


@pytest.mark.parametrize("name", SPECIAL)
def test_declared_names_are_plain_symbols(name: str) -> None:
    """Rule: only the grammar's functions and pi are reserved; E is energy, I is current."""
    expr = parse_expression(f"2*{name} + {name}**2", [name])
    symbol = sp.Symbol(name, real=True)
    assert expr == 2 * symbol + symbol**2
    assert expr.free_symbols == {symbol}
    assert not expr.has(sp.E, sp.I, sp.oo, sp.nan, sp.zoo)
    assert parse_expression(format_expression(expr), [name]) == expr


def test_energy_and_current_in_one_law() -> None:
    expr = parse_expression("E/(I*t) + exp(1)", ["E", "I", "t"])
    assert format_expression(expr) == "E/(I*t) + exp(1)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('rm -rf /')", r"name '__import__' at column 1 \(dunder"),
        ("x.__class__", r"unexpected '\.' at column 2 \(attribute access"),
        ("G*m1.x", r"'G\*m1\.x': unexpected '\.' at column 5 \(attribute access"),
        ("x[0]", r"unexpected '\[' at column 2 \(indexing"),
        ("lambda: 1", r"unexpected ':' at column 7"),
        ("'str'", r"strings are not allowed"),
        ('"str"', r"strings are not allowed"),
        ("x if y else z", r"keyword 'if' at column 3"),
        ("(x := 1)", r"assignment expressions are not allowed"),
        ("foo(x)", r"unknown function 'foo'.*the functions are: abs, acos"),
        ("print(x)", r"unknown function 'print'"),
        ("x(2)", r"'x' is not a function"),
        ("sqrt(x, y)", r"sqrt\(\) takes 1 argument, got 2"),
        ("sqrt()", r"sqrt\(\) takes 1 argument, got 0"),
        ("dot(x)", r"dot\(\) takes 2 arguments, got 1"),
        ("sqrt", r"function 'sqrt' is not called"),
        ("2**10**10", r"exponent 10000000000 is larger than 64"),
        ("10**10**10", r"exponent 10000000000 is larger than 64"),
        ("2**99999999", r"exponent 99999999 is larger than 64"),
        ("x**-65", r"exponent -65 is larger than 64"),
        ("(2**60)**18", r"outside the finite float range"),
        ("1e999", r"number 1e999 is outside the float range"),
        ("1e-310", r"number 1e-310 is outside the float range"),
        ("1e-999", r"underflows to 0"),
        ("9" * 5000, r"longer than 4000 characters"),
        ("9" * 400, r"number 99999999999999999999\.\.\. is outside the float"),
        ("exp(1000.0)", r"outside the finite float range"),
        ("1/0", r"complex, infinite or undefined"),
        ("x/(y - y)", r"complex, infinite or undefined"),
        ("log(0)", r"complex, infinite or undefined"),
        ("sqrt(-1)", r"complex, infinite or undefined"),
        ("(-8)**(1/3)", r"negative number to a fractional power"),
        ("x y", r"unexpected name 'y' at column 3 \(missing operator"),
        ("2x", r"unexpected name 'x' at column 2"),
        ("(x)(y)", r"unexpected '\(' at column 4"),
        ("x, y", r"commas only separate function arguments"),
        ("x;y", r"write a single expression"),
        ("x^2", r"use \*\* for powers"),
        ("x == y", r"comparisons"),
        ("x @ y", r"use dot\(a, b\)"),
        ("x % y", r"unexpected '%'"),
        ("x // y", r"unexpected '/' at column 4"),
        ("x +", r"unexpected end of expression at column 4"),
        ("", r"unexpected end of expression at column 1"),
        ("(x", r"expected '\)' at column 3 \(the '\(' at column 1 is not closed"),
        ("x)", r"unmatched '\)'"),
        ("π*x", r"unexpected 'π' at column 1"),
        ("x # comment", r"comments are not allowed"),
        ("None", r"keyword 'None'"),
        ("True + x", r"keyword 'True'"),
        ("1_000", r"unexpected name '_000'"),
        ("0x10", r"unexpected name 'x10'"),
    ],
)
def test_bad_expressions(text: str, message: str) -> None:
    with pytest.raises(InvalidExpression, match=message) as info:
        parse(text)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("invalid expression")


def test_error_names_the_fix() -> None:
    with pytest.raises(InvalidExpression) as info:
        parse("G*m1.x")
    assert str(info.value).endswith("sqrt(), tan(), tanh()")
    assert "write only numbers, names, + - * / ** ( )" in str(info.value)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    with pytest.raises(InvalidExpression, match=f"nesting deeper than {MAX_DEPTH}"):
        parse("(" * 500 + "x" + ")" * 500)
    with pytest.raises(InvalidExpression, match="nesting deeper"):
        parse("-" * 500 + "x")
    with pytest.raises(InvalidExpression, match="nesting deeper"):
        parse("sqrt(" * 500 + "x" + ")" * 500)
    assert parse("(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)) == x


def test_size_limits() -> None:
    with pytest.raises(InvalidExpression, match=f"longer than {MAX_LENGTH}"):
        parse("x+" * 5000 + "x")
    with pytest.raises(InvalidExpression, match=f"more than {MAX_NODES} tokens"):
        parse("x+" * 600 + "x")
    assert parse("+".join(["x"] * 400)) == 400 * x


def test_long_text_is_quoted_around_the_spot() -> None:
    text = "x + " * 30 + "y.z" + " + x" * 30
    with pytest.raises(InvalidExpression, match=r"'\.\.\..*y\.z.*\.\.\.': unexpected '\.'"):
        parse(text)


@pytest.mark.timeout(20)
def test_hostile_input_is_refused_before_computing() -> None:
    """Rule: limits are checked before sympy evaluates (pytest-timeout guards against hangs)."""
    for text in ["2**10**10", "10**10**10**10", "((2**64)**64)**64", "1e308*1e308*1e308",
                 "sin(1e308)*tan(1e308)", "exp(1e308)", "9" * 3999]:  # fmt: skip
        with contextlib.suppress(InvalidExpression):
            parse(text)


@pytest.mark.parametrize("name", ["sqrt", "pi", "__x", "lambda", "1x", "a.b", ""])
def test_reserved_or_malformed_names_refused(name: str) -> None:
    with pytest.raises(InvalidExpression, match="invalid name"):
        parse_expression("1", [name])


def test_non_string_refused() -> None:
    with pytest.raises(InvalidExpression, match="expected expression text"):
        parse_expression(b"x", ["x"])  # type: ignore[arg-type]


def test_functions_allowlist() -> None:
    assert {"sqrt", "exp", "log", "sin", "cos", "tan", "sinc", "asin", "acos", "atan", "sinh",
            "cosh", "tanh", "abs", "norm", "dot"} == FUNCTIONS  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (sp.Abs(x) / 3 + sp.Float(0.1) + sp.E, "abs(x)/3 + 0.1 + exp(1)"),
        (Norm(x) * Dot(x, y), "dot(x, y)*norm(x)"),
        (sp.Float(0.1) + sp.Float(0.2), "0.30000000000000004"),
        (sp.Float(6.674e-11) * x, "6.674e-11*x"),
        (sp.pi * x**2, "pi*x**2"),
        (x ** sp.Float(-0.5), "x**(-0.5)"),
    ],
)
def test_format(expr: sp.Expr, text: str) -> None:
    assert format_expression(expr) == text
    assert parse(text) == expr


@pytest.mark.parametrize(
    "expr",
    [sp.I * x, sp.oo, sp.zoo, sp.nan, sp.Function("f")(x), sp.Symbol("lambda"),
     sp.Symbol("pi"), sp.Piecewise((x, x > 0), (0, True)), sp.sign(x), sp.Integer(2) ** 2000],
)  # fmt: skip
def test_format_refuses_what_the_grammar_cannot_say(expr: sp.Expr) -> None:
    with pytest.raises(InvalidExpression, match="cannot write"):
        format_expression(expr)


# --- property tests -------------------------------------------------------------------------

_ATOMS = st.one_of(
    st.sampled_from([*NAMES, "pi"]),
    st.integers(0, 1000).map(str),
    st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0.5", "1e-3", ".25", "3.", "2.5E2"]),
)
_UNARY = sorted(FUNCTIONS - {"dot"})


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    power = st.tuples(children, st.sampled_from(["2", "3", "-1", "0.5", "(1/3)", "x"])).map(
        lambda t: f"({t[0]})**{t[1]}"
    )
    call = st.tuples(st.sampled_from(_UNARY), children).map(lambda t: f"{t[0]}({t[1]})")
    dot = st.tuples(children, children).map(lambda t: f"dot({t[0]}, {t[1]})")
    unary = st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}({t[1]})")
    parens = children.map(lambda t: f"({t})")
    return st.one_of(binary, power, call, dot, unary, parens)


GRAMMAR = st.recursive(_ATOMS, _extend, max_leaves=12)


@SETTINGS
@given(GRAMMAR)
def test_round_trip(text: str) -> None:
    """Rule: for every expression e the grammar accepts, parse(format(e)) == e."""
    try:
        expr = parse(text)
    except InvalidExpression:
        return  # e.g. 1/0 or log(0): refused, which is fine
    printed = format_expression(expr)
    again = parse(printed)
    assert again == expr, (text, printed)
    assert format_expression(again) == printed


_GARBAGE_ALPHABET = st.sampled_from(
    [
        *"xyzG1234567890.eE+-*/()[]{},;:=<>!'\"\\ _@%^&|~#$?`π\n\t\0",
        "**",
        "sqrt(",
        "dot(",
        "__",
        "lambda",
        "pi",
        "import",
        "9" * 30,
        "1e308",
        "**9",
    ]
)


@SETTINGS
@given(st.one_of(st.text(max_size=60), st.lists(_GARBAGE_ALPHABET, max_size=40).map("".join)))
def test_garbage_raises_only_invalid_expression(text: str) -> None:
    """Rule: any text either parses or raises InvalidExpression, on one line."""
    message = ""
    try:
        expr = parse(text)
    except InvalidExpression as exc:
        message = str(exc)
    else:
        assert parse(format_expression(expr)) == expr
    assert "\n" not in message


PACKAGE = Path(modreg.__file__).parent


def _offenders(directory: Path, pattern: str) -> list[str]:
    forbidden = re.compile(pattern, re.MULTILINE)
    return [
        f"{path.relative_to(PACKAGE)}:{text[: match.start()].count(chr(10)) + 1}: {match.group()}"
        for path in sorted(directory.rglob("*.py"))
        for text in [path.read_text(encoding="utf-8")]
        for match in forbidden.finditer(text)
    ]


def test_no_text_evaluators_in_package() -> None:
    """Rule: nothing in modreg/ hands text to sympy's parsers, eval, lambdify or pickle."""
    pattern = (
        r"\b(?:sympify|parse_expr|lambdify|literal_eval|S)\s*\("
        r"|(?<![\w.])(?:eval|__import__)\s*\("
        r"|^\s*(?:import|from)\s+(?:pickle|dill|marshal|shelve)\b"
        r"|\bpickle\.\w"
    )
    assert _offenders(PACKAGE, pattern) == []


def test_spec_never_compiles_text() -> None:
    """Rule: modreg/spec, which reads stored text, uses no Python parser, compiler or exec."""
    pattern = r"(?<![\w.])(?:exec|compile)\s*\(|^\s*(?:import|from)\s+ast\b"
    assert _offenders(PACKAGE / "spec", pattern) == []
