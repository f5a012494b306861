"""The lecture's weight counts as code, and the page that states them (`docs/rnn.md`).

    python -m pipeline.lecture    # renders docs/rnn.md from lecture_page.md beside this module

The seed lecture counts the weights of its smallest nets (2 inputs, 4 hidden units, 1 output):
an MLP has W_xh and W_hy, an RNN adds the recurrent W_hh. Keras' recurrent layers count the same
blocks once per gate, with biases. The page also counts the weights of the models the pipeline
fits at the default params (`fitted_weights`). The page's numbers are placeholders filled from the
functions here (`page_values`), and the tests check those functions against the lecture's answers,
the layers Keras builds and the fitted models' `parameter_counts()`, so the page cannot state a
number the code does not.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline import io
from pipeline.cli import run
from pipeline.params import CELLS, Params

PAGE = Path("docs") / "rnn.md"
TEMPLATE = Path(__file__).with_name("lecture_page.md")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

LECTURE_NET = {"n_inputs": 2, "n_hidden": 4, "n_outputs": 1}  # the lecture's "how many weights?" example
# Weight blocks per Keras cell, each with its own W_xh, W_hh and bias: SimpleRNN's one; GRU's
# update gate, reset gate and candidate; LSTM's input, forget and output gates and candidate cell.
GATE_BLOCKS = {"simple_rnn": 1, "gru": 3, "lstm": 4}
# Bias vectors per block: Keras' GRU default (reset_after=True) keeps one for the input and one
# for the recurrent product.
BIASES = {"simple_rnn": 1, "gru": 2, "lstm": 1}


def mlp_weights(n_inputs: int, n_hidden: int, n_outputs: int) -> dict[str, int]:
    """The lecture's count for an MLP of one hidden layer: weights only, no biases."""
    return {"W_xh": n_inputs * n_hidden, "W_hy": n_hidden * n_outputs}


def rnn_weights(n_inputs: int, n_hidden: int, n_outputs: int) -> dict[str, int]:
    """The lecture's count for a vanilla RNN: the MLP's weights and the recurrent W_hh, every
    hidden unit to every hidden unit (itself included)."""
    mlp = mlp_weights(n_inputs, n_hidden, n_outputs)
    return {"W_xh": mlp["W_xh"], "W_hh": n_hidden * n_hidden, "W_hy": mlp["W_hy"]}


def layer_weights(cell: str, n_inputs: int, units: int) -> int:
    """Trainable parameters of one Keras recurrent layer of `units` on `n_inputs` inputs per step:
    per block W_xh (m n), W_hh (n^2) and the biases, e.g. an LSTM's 4(mn + n^2 + n)."""
    return GATE_BLOCKS[cell] * (n_inputs * units + units * units + BIASES[cell] * units)


def outputs(params: Params, strategy: str) -> int:
    """Outputs of a net: one per horizon (`mimo`), or the next value alone (`recursive`)."""
    return len(params.forecast.horizons) if strategy == "mimo" else 1


def fitted_weights(params: Params) -> dict[str, dict[str, int]]:
    """Per model the stages fit under `params` (every Keras cell, the NumPy RNN), its trainable
    parameters in the recurrent layers (each layer's input the one below, the first one value a
    step) and in the output, and their total."""
    out = {}
    for cell in CELLS:
        n_outputs, inputs, recurrent = outputs(params, params.lstm.strategy), 1, 0
        for units in params.lstm.units:
            recurrent, inputs = recurrent + layer_weights(cell, inputs, units), units
        out[cell] = {"recurrent": recurrent, "output": inputs * n_outputs + n_outputs}
    hidden, n_outputs = params.rnn_scratch.hidden, outputs(params, params.rnn_scratch.strategy)
    rnn = rnn_weights(1, hidden, n_outputs)
    # b_h with the recurrent layer, b_y with the output: the lecture's blocks plus their biases
    out["rnn_scratch"] = {"recurrent": rnn["W_xh"] + rnn["W_hh"] + hidden, "output": rnn["W_hy"] + n_outputs}
    return {name: {**counts, "total": counts["recurrent"] + counts["output"]} for name, counts in out.items()}


def page_values() -> dict[str, int]:
    """Every number `docs/rnn.md` states, by its placeholder name."""
    m, n, o = LECTURE_NET["n_inputs"], LECTURE_NET["n_hidden"], LECTURE_NET["n_outputs"]
    mlp, rnn = mlp_weights(m, n, o), rnn_weights(m, n, o)
    values = {"n_inputs": m, "n_hidden": n, "n_outputs": o}
    values |= {f"mlp_{block}": count for block, count in mlp.items()} | {"mlp_total": sum(mlp.values())}
    values |= {f"rnn_{block}": count for block, count in rnn.items()} | {"rnn_total": sum(rnn.values())}
    for cell in GATE_BLOCKS:
        values |= {f"{cell}_blocks": GATE_BLOCKS[cell], f"{cell}_biases": BIASES[cell]}
        values[f"{cell}_layer"] = layer_weights(cell, m, n)
    defaults = Params()  # the page describes the default pipeline's models
    for name, counts in fitted_weights(defaults).items():
        values |= {f"fitted_{name}_{block}": count for block, count in counts.items()}
    values |= {"fitted_hidden": defaults.rnn_scratch.hidden, "fitted_units": defaults.lstm.units[0]}
    values["fitted_outputs"] = len(defaults.forecast.horizons)
    return values


def render_page(template: str, values: dict[str, int]) -> str:
    """`template` with each `{{name}}` replaced by `values[name]` (a missing name is a KeyError)."""
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def main() -> None:
    page = render_page(TEMPLATE.read_text(encoding="utf-8"), page_values())
    with io.atomic_path(PAGE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"lecture: {PAGE} rendered from {TEMPLATE.name}")


if __name__ == "__main__":
    run(main)
