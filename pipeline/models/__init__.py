"""Forecasting models, one file per family, all under one contract (`pipeline.models.base.Model`).

The contract (what `pipeline.walkforward`, the model store and the tracking stage call):

- the constructor stores its keyword arguments unchanged and does nothing else;
- `fit(y, X=None)` learns from `y`, the log prices of a fold's train part (and `X`, the rows of
  the features table aligned with `y`, for the models whose `input_columns()` name some), and
  returns `self`; learned state lives in attributes ending in `_`; scalers, order selection and
  early stopping happen here, on the train part alone;
- `predict(y, n, X=None)` returns a NumPy array of `n` one-step-ahead log-price forecasts for
  the last `n` values of `y` (which extends the train part with later observations): forecast
  `i` uses only `y[:len(y) - n + i]`. Models are never re-fitted inside `predict`;
- `predict_interval(y, n, X=None)`: an `(n, 2)` array of log-price bounds, or `None`;
- `save(directory)` / `load(directory, params)`: the fitted model as safe files (no pickle);
- `parameter_counts()`, `learned()`, `history()`, `native(y)`: what the leaderboard and the
  tracking stage report (trainable weights by block, small learned values, training curves, the
  learned object for an MLflow flavour); `prepare()` imports what `fit` needs.

`Model` gives every optional part a default. A model with `warm_start=True` is fitted fold after
fold on the same object. `pipeline.models.store` saves fitted models, `pipeline.models.loader`
reads them back.
"""
