"""The lecture's weight counts against its answers and against Keras, and `docs/rnn.md` against
the code that fills it in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pipeline.models.recurrent  # noqa: F401  (chooses Keras' JAX backend before keras is imported)
from pipeline import lecture
from pipeline.models.scratch_rnn import ScratchRnn
from pipeline.params import Params, parse_params
from pipeline.train import build_models
from tests.test_models import Y

ROOT = Path(__file__).resolve().parent.parent
# The equations' own constants (x_1, h_{t-1}, n^2, 1 - h_t^2, 1 - z_t): not counts, so not placeholders.
EQUATION_DIGITS = re.compile(r"x_1|t-1|\^2|\(1 - [hz]_t")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def test_the_lectures_answers():
    """The slide "So how many weights in each architecture?": 2 inputs, 4 hidden, 1 output."""
    assert lecture.LECTURE_NET == {"n_inputs": 2, "n_hidden": 4, "n_outputs": 1}
    assert lecture.mlp_weights(2, 4, 1) == {"W_xh": 8, "W_hy": 4}
    assert lecture.rnn_weights(2, 4, 1) == {"W_xh": 8, "W_hh": 16, "W_hy": 4}


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
@pytest.mark.parametrize(("n_inputs", "units"), [(2, 4), (1, 32), (3, 5)])
def test_layer_weights_are_what_keras_builds(cell, n_inputs, units):
    import keras

    layer = getattr(keras.layers, pipeline.models.recurrent.CELLS[cell])(units)
    keras.Sequential([keras.Input((7, n_inputs)), layer])
    assert lecture.layer_weights(cell, n_inputs, units) == layer.count_params()


def test_an_lstm_layer_has_four_mn_plus_n_squared_plus_n():
    m, n = 3, 5
    assert lecture.layer_weights("lstm", m, n) == 4 * (m * n + n**2 + n)


def test_the_numpy_rnn_has_the_lectures_blocks_plus_biases():
    model = ScratchRnn(hidden=4, epochs=1, n_lags=5, horizons=(1, 5)).fit(Y[:200])
    counts = model.parameter_counts()
    assert {block: counts[block] for block in ("W_xh", "W_hh", "W_hy")} == lecture.rnn_weights(1, 4, 2)
    assert (counts["b_h"], counts["b_y"]) == (4, 2)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_the_fitted_keras_nets_have_the_pages_counts(cell):
    """Built by the lstm stage at the default params (a tiny fit: counts depend on no data)."""
    params = parse_params({"lstm": {"cells": [cell], "epochs": 1}, "features": {"n_lags": 5}})
    (net,) = build_models("lstm", params).values()
    counts = net.fit(Y[:200]).parameter_counts()
    expected = lecture.fitted_weights(Params())[cell]
    assert sum(v for k, v in counts.items() if not k.startswith("dense")) == expected["recurrent"]
    assert sum(counts.values()) == expected["total"] == lecture.page_values()[f"fitted_{cell}_total"]


def test_the_fitted_numpy_rnn_has_the_pages_counts():
    (rnn,) = build_models(
        "rnn_scratch", parse_params({"rnn_scratch": {"epochs": 1}, "features": {"n_lags": 5}})
    ).values()
    counts = rnn.fit(Y[:200]).parameter_counts()
    expected = lecture.fitted_weights(Params())["rnn_scratch"]
    assert counts["W_xh"] + counts["W_hh"] + counts["b_h"] == expected["recurrent"]
    assert sum(counts.values()) == expected["total"] == lecture.page_values()["fitted_rnn_scratch_total"]


def test_an_lstm_layer_of_the_default_units_has_four_mn_plus_n_squared_plus_n():
    n = Params().lstm.units[0]
    assert lecture.fitted_weights(Params())["lstm"]["recurrent"] == 4 * (1 * n + n**2 + n)


def test_the_page_is_rendered_from_the_code():
    """docs/rnn.md is what `python -m pipeline.lecture` writes: rerun it after a change."""
    template = lecture.TEMPLATE.read_text(encoding="utf-8")
    assert (ROOT / lecture.PAGE).read_text(encoding="utf-8") == lecture.render_page(template, lecture.page_values())


def test_every_number_on_the_page_is_a_placeholder():
    template = lecture.TEMPLATE.read_text(encoding="utf-8")
    assert set(lecture.PLACEHOLDER.findall(template)) == set(lecture.page_values())  # each used, none unknown
    prose = EQUATION_DIGITS.sub("", lecture.PLACEHOLDER.sub("", template))
    assert not re.findall(r".{0,20}\d.{0,20}", prose)


def test_page_values_state_the_lectures_answers():
    values = lecture.page_values()
    assert (values["mlp_W_xh"], values["mlp_W_hy"], values["rnn_W_hh"]) == (8, 4, 16)
    assert values["lstm_layer"] == lecture.layer_weights("lstm", 2, 4) == 112


def test_main_writes_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lecture.main()
    assert (tmp_path / lecture.PAGE).read_text(encoding="utf-8") == (ROOT / lecture.PAGE).read_text(encoding="utf-8")


def test_a_missing_value_is_an_error():
    with pytest.raises(KeyError, match="rnn_W_hh"):
        lecture.render_page("W_hh = {{rnn_W_hh}}", {})
