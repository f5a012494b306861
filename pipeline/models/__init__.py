"""Forecasting models, one file per family, all under one contract.

The contract (what `pipeline.walkforward` calls, and all it calls):

- the constructor stores its keyword arguments unchanged and does nothing else;
- `fit(y)` learns from `y`, the log prices of a fold's train part, and returns `self`; learned
  state lives in attributes ending in `_`; scalers, order selection and early stopping happen
  here, on `y` alone;
- `predict(y, n)` returns a NumPy array of `n` one-step-ahead log-price forecasts for the last
  `n` values of `y` (which extends the train part with later observations): forecast `i` uses
  only `y[:len(y) - n + i]`. Models are never re-fitted inside `predict`;
- optionally `predict_interval(y, n)`: an `(n, 2)` array of lower and upper log-price bounds.

- optionally `parameter_counts()`: the fitted model's trainable parameters by weight block
  (e.g. `{"lstm_1 W_xh": 512, ...}`); the leaderboard shows them.

A model with `warm_start=True` is fitted fold after fold on the same object.
"""
