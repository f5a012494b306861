"""Generated hostile inputs (Hypothesis): CSV files through the ingest stage, params.yaml through its loader.

The property, for every generated case: the stage succeeds and writes a valid prices table, or it
exits 2 with exactly one `error: ` line on stderr naming the file, column or key; never a
traceback, never a warning on stderr, and the previous outputs stay byte-identical. The stage runs
in this process (a process per case would be a hundred times slower) in a prepared workspace
holding the good outputs of an earlier run. The `@example` rows are the failures found while
writing and running the generators, kept as regressions.

    STOCKCAST_FUZZ_EXAMPLES=10000 python -m pytest -q tests/test_fuzz.py     # make fuzz
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import string
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import sample_csv
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from pipeline import ingest
from pipeline import io as pipeline_io
from pipeline.cli import UserError, run
from pipeline.params import Params, load_params

# Hypothesis caches (its charmap, literals seen in the code) in ./.hypothesis even without a
# database: outside the repo instead, kept between runs.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "stockcast-hypothesis")

CSV = "input/acme.csv"
PRICES = Path("data/prices.parquet")
FUZZ = settings(
    max_examples=int(os.environ.get("STOCKCAST_FUZZ_EXAMPLES", "150")),  # per test; `make fuzz` sets 10,000
    derandomize=True,  # the same cases on every run and machine
    deadline=None,  # a case's time depends on the machine's load, not on the case
    database=None,  # no example database: failures are kept as @example rows instead
    # Whole files are drawn on purpose (up to a few KB each), and a slow shared machine is not a bug.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --- CSV files ------------------------------------------------------------------------------------

SPELLINGS = {  # canonical column -> headers a user may write (ingest.HEADER_ALIASES maps them)
    "ds": ["Date", "ds", "Datetime", "Timestamp"],
    "unique_id": ["Ticker", "Symbol", "unique_id"],
    "open": ["Open"],
    "high": ["High"],
    "low": ["Low"],
    "close": ["Close"],
    "adj_close": ["Adj Close", "adj_close", "AdjClose", "Adjusted Close"],
    "volume": ["Volume"],
}
EXTRA_COLUMNS = ["Dividends", "Stock Splits", "Unnamed: 0", "", "Close.1", "notes", "Dátum"]
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%d %B %Y", "%b %d %Y"]
BAD_DATES = [
    "",
    " ",
    "2020-13-45",
    "2020-02-30",
    "0000-00-00",
    "9999-12-31",
    "1",
    "5",
    "now",
    "12:00",
    "2020-01-01+01:00",
]
BAD_NUMBERS = [
    *["", "NaN", "nan", "null", "NA", "N/A", "-", "inf", "-inf", "Infinity", "0", "-0", "0.0", "-1.5", "1e300"],
    *["1e12", "1e13", "1e400", "1e-320", "abc", "1,5", "$12", " 12 ", "0x1A", "١٢", "1_000", "true", '"7"'],
]
TICKERS = ["ACME", "BRK.B", "^GSPC", "EURUSD=X", "", " acme ", "A/B", "../x", "nan", "X" * 40, "é"]
ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


def case_of(text: str, draw) -> str:
    return draw(st.sampled_from([text, text.lower(), text.upper(), text.title(), f" {text} ", text.swapcase()]))


@st.composite
def csv_files(draw) -> bytes:
    """A price file as a user may write it: any header spelling, order and extras, any date format,
    empty lines, unsorted and missing rows, a BOM; and, in about half the files, hostile cells,
    duplicate rows or columns, mixed date formats, another delimiter or encoding, damaged bytes."""
    hostile = draw(st.booleans())
    if hostile and draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))  # not a CSV at all
    columns = [c for c in SPELLINGS if c not in ("ds", "unique_id") and draw(st.booleans())] or ["close"]
    columns += ["ds"] if not hostile or draw(st.integers(0, 9)) else []
    columns += ["unique_id"] if draw(st.booleans()) else []
    columns += draw(st.lists(st.sampled_from(EXTRA_COLUMNS), max_size=2))
    columns = draw(st.permutations(columns))
    header = [case_of(draw(st.sampled_from(SPELLINGS.get(c, [c]))), draw) for c in columns]
    if hostile and draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(header)))  # a duplicate column
    many = "unique_id" in columns or hostile  # without a ticker column, two series are duplicate dates
    tickers = draw(
        st.lists(st.sampled_from(TICKERS if hostile else TICKERS[:4]), min_size=1, max_size=3 if many else 1)
    )
    formats = draw(st.lists(st.sampled_from(DATE_FORMATS), min_size=1, max_size=2 if hostile else 1))  # mixed
    first = draw(st.dates(datetime.date(1990, 1, 1), datetime.date(2030, 1, 1)))
    days = pd.bdate_range(first, periods=draw(st.integers(0 if hostile else 2, 25)))
    bad = draw(st.sampled_from([0, 1, 3, 10])) if hostile else 0  # percent of cells replaced by hostile ones
    rows = []
    for ticker in dict.fromkeys(tickers):
        price = draw(st.floats(0.01, 1e4))
        for i, day in enumerate(days):
            row = []
            for column in columns:
                if column == "ds":
                    cell = day.strftime(formats[i % len(formats)])
                elif column == "unique_id":
                    cell = ticker
                elif column == "volume":
                    cell = str(1000 + i)
                elif column in SPELLINGS:
                    cell = draw(st.sampled_from([f"{price * (1 + i / 100):.4f}", repr(price), f"{price:e}", "", "NaN"]))
                else:
                    cell = "x"
                if draw(st.integers(0, 99)) < bad:
                    cell = draw(st.sampled_from(BAD_DATES if column == "ds" else BAD_NUMBERS))
                row.append(cell)
            rows.append(row)
    for _ in range(draw(st.integers(0, 2)) if hostile and rows else 0):  # duplicate rows
        rows.insert(draw(st.integers(0, len(rows))), list(draw(st.sampled_from(rows))))
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))  # unsorted
    if len(rows) > 8 and draw(st.booleans()):
        del rows[draw(st.integers(0, len(rows) - 4)) :][: draw(st.integers(1, 3))]  # missing rows
    sep = draw(st.sampled_from([",", ";", "\t", "|"])) if hostile and draw(st.booleans()) else ","
    quote = draw(st.integers(0, 9)) == 0
    lines = [sep.join(f'"{c}"' if quote else c for c in r) for r in [header, *rows]]
    for _ in range(draw(st.integers(0, 3))):  # empty lines, and rows of empty fields (spreadsheets write them)
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", sep * (len(header) - 1)])))
    if hostile and draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), " ")  # a line holding a space: a row with one blank cell
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(ENCODINGS if hostile else ["utf-8", "utf-8-sig"]))
    data = text.encode(encoding, errors="replace")
    if hostile and data and draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data) - 1))]  # truncated
    if hostile and data and draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]  # binary bytes
    return data


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """params.yaml reading input/acme.csv, and data/prices.parquet from a good ingest run."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "input").mkdir()
    (root / CSV).write_text(sample_csv(40))
    (root / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "csv", "path": CSV}}))
    with contextlib.chdir(root):
        code, _, stderr, _ = run_ingest()
    assert code == 0, stderr
    return root


def run_ingest() -> tuple[int, str, str, list[warnings.WarningMessage]]:
    """`python -m pipeline.ingest` in this process: exit status, stdout, stderr and the warnings it
    would print. Any exception other than SystemExit escapes, as a traceback would."""
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("always")
        try:
            run(ingest.main)
            code = 0
        except SystemExit as exit:
            code = exit.code
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    return code, out.getvalue(), err.getvalue(), shown


def check_prices(path: Path) -> None:
    """The prices contract: sorted, unique (unique_id, ds), every present price positive and finite."""
    frame = pq.read_table(path).to_pandas()
    assert frame.columns[:2].tolist() == ["unique_id", "ds"]
    assert frame["ds"].dtype == "datetime64[ns]" and frame["ds"].notna().all()
    assert frame["unique_id"].map(lambda t: isinstance(t, str) and ingest.TICKER_PATTERN.fullmatch(t)).all()
    assert frame.equals(frame.sort_values(["unique_id", "ds"]).reset_index(drop=True))
    assert not frame.duplicated(["unique_id", "ds"]).any()
    prices = [c for c in frame.columns[2:] if c != "volume"]
    assert prices and set(prices) <= set(pipeline_io.PRICE_COLUMNS)
    values = frame[prices].to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    assert (present > 0).all() and (present <= ingest.MAX_PRICE).all()
    assert frame[pipeline_io.target_column(prices)].notna().all()
    assert frame.groupby("unique_id").size().min() >= 2


@FUZZ
@given(data=csv_files())
@example(data=b"Date,Close\n2020-01-01,1\n,2\n2020-01-03,3\n")  # found: an empty date became NaT in the table
@example(data=b"Date,Close\n2020-01-01,1\n ,0\n2020-01-03,3\n")  # found: NaT in an error message: a traceback
@example(data=b"Date,Close\n13.01.2020,1\n14.01.2020,2\n")  # found: pandas' dayfirst warning on stderr
@example(data=b"Date,Close\n5,1\n6,2\n")  # found: pandas' dateutil warning on stderr
def test_generated_csv_succeeds_or_fails_with_one_line(workspace, data):
    good = (workspace / PRICES).read_bytes()
    before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
    (workspace / CSV).write_bytes(data)
    try:
        with contextlib.chdir(workspace):
            code, _, stderr, shown = run_ingest()
        assert not shown, [f"{w.category.__name__}: {w.message}" for w in shown]
        lines = stderr.splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        assert all(line.startswith(("error: ", f"ingest: {CSV}: dropped ")) for line in lines), stderr
        if code == 0:
            event("ingest succeeded")
            assert not errors
            check_prices(workspace / PRICES)
        else:
            event("ingest failed")
            assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], stderr
            assert errors[0].startswith(f"error: {CSV}: ") and len(errors[0]) > len(f"error: {CSV}: "), stderr
            assert (workspace / PRICES).read_bytes() == good
        assert sorted(p.relative_to(workspace) for p in workspace.rglob("*")) == before  # no temp file left
    finally:
        (workspace / PRICES).write_bytes(good)


@pytest.mark.parametrize("date", ["now", "Today", "12:00", "Jan 5"])
def test_dates_are_never_read_from_the_clock(tmp_path, date):
    """pandas reads these as a time today (found while writing the date generator): the same file
    would give another table tomorrow, so they are errors naming the row."""
    path = tmp_path / "acme.csv"
    path.write_text(f"Date,Close\n2020-01-02,1\n{date},2\n")
    with pytest.raises(UserError, match=f"column 'ds': unparseable or inconsistent date '{date}' on row 2"):
        ingest.read_csv(path)
    path.write_text(f"Date,Close\n{date},2\n")
    with pytest.raises(UserError, match=f"column 'ds': unparseable or inconsistent date '{date}' on row 1"):
        ingest.read_csv(path)


# --- params.yaml ----------------------------------------------------------------------------------

DEFAULTS = Params().model_dump()
SECTIONS = list(DEFAULTS)
NAMES = st.sampled_from(["n_fold", "Source", "lr", "n_lags "]) | st.text(
    string.ascii_letters + string.digits + "_.:- é", max_size=12
)
KEYS = st.one_of(NAMES, st.integers(-3, 3), st.none(), st.booleans(), st.floats(allow_nan=False))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.sampled_from([-(2**63), 2**64, 10**30]),
    st.floats(-2, 2),
    st.floats(),
    st.text(max_size=15),
    st.sampled_from(["auto", "csv", "yfinance", "synthetic", "dask", "loky", "gru", "mlp", "2020-01-01", "sp500"]),
    st.dates(),
)


def containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3)


VALUES = st.recursive(SCALARS, containers)
NOT_MAPPINGS = st.one_of(SCALARS, st.lists(VALUES, max_size=3))  # a section or a document that is not a mapping


def spelled(key) -> str:
    """A key as the loader's messages name it: as written, or, if not a string, as YAML writes it."""
    return key if isinstance(key, str) else yaml.safe_dump(key).splitlines()[0]


@st.composite
def params_documents(draw) -> tuple[bytes, frozenset[str] | None]:
    """A params.yaml: the defaults with a few keys dropped, added, retyped or set out of range, or a
    document that is not a mapping, not YAML or not text. Also returns the places an error may name
    (`section` or `section.key`), None where any is fine (the text itself is broken)."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.binary(max_size=200)), None
    if kind == 1:
        return draw(st.text(max_size=200)).encode(), None
    document = {section: dict(keys) for section, keys in DEFAULTS.items()}
    named = set()
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(SECTIONS))
        key = draw(st.sampled_from(list(DEFAULTS[section])))
        op = draw(
            st.sampled_from(["set", "set", "set", "drop", "drop section", "unknown key", "unknown section", "section"])
        )
        if op == "set" and isinstance(document.get(section), dict):
            document[section][key] = draw(VALUES)
            named |= {section, f"{section}.{key}", *(f"{section}.{k}" for k in DEFAULTS[section])}
        elif op == "drop" and isinstance(document.get(section), dict):
            document[section].pop(key, None)
            named |= {section, *(f"{section}.{k}" for k in DEFAULTS[section])}  # a rule may need the key
        elif op == "drop section":
            document.pop(section, None)
        elif op == "unknown key" and isinstance(document.get(section), dict):
            name = draw(KEYS)
            if name in DEFAULTS[section]:
                continue
            document[section][name] = draw(VALUES)
            named |= {section, f"{section}.{spelled(name)}"}
        elif op == "unknown section":
            name = draw(KEYS)
            if name in DEFAULTS:
                continue
            document[name] = draw(VALUES)
            named.add(spelled(name))
        elif op == "section":
            document[section] = draw(NOT_MAPPINGS)  # null, too: the section's defaults
            named.add(section)
    if draw(st.integers(0, 9)) == 0:
        document = draw(NOT_MAPPINGS)  # not a mapping at all (null: all defaults)
        named = {"top level"}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # truncated: any error is fine
        named = None
    return text.encode(), None if named is None else frozenset(named)


@FUZZ
@given(case=params_documents())
@example(case=(b"data:\n  1: 2\n", frozenset({"data.1"})))  # found: a KeyError, not a message
@example(case=(b"null: 1\n", frozenset({"null"})))  # found: a KeyError, not a message
@example(case=(b"data:\n  null: 1\n", frozenset({"data.null"})))  # found: a KeyError, not a message
@example(case=(b"data:\n  false: 1\n", frozenset({"data.false"})))  # found: named 'data.0'
@example(case=(b"false: 1\n", frozenset({"false"})))  # found: named '0'
def test_generated_params_load_or_fail_with_one_line(tmp_path_factory, case):
    document, named = case
    folder = tmp_path_factory.getbasetemp() / "params"
    folder.mkdir(exist_ok=True)
    (folder / "params.yaml").write_bytes(document)
    with contextlib.chdir(folder):
        try:
            params = load_params(Path("params.yaml"))
        except UserError as err:
            message = str(err)
        else:
            event("params loaded")
            assert isinstance(params, Params)
            return
    event("params rejected")
    assert "\n" not in message and message.startswith("params.yaml: "), message
    problem = message.removeprefix("params.yaml: ")
    if named == {"top level"}:
        assert problem == "expected a mapping of sections at the top level", message
    elif named is not None:
        assert any(problem.startswith(f"{place}: ") for place in named), (message, sorted(named))
    else:
        assert problem and not problem.startswith(":"), message
