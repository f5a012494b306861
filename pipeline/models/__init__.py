"""Forecasting models, one file per family, all under one contract (`pipeline.models.base.Model`).

The contract (what `pipeline.walkforward`, the model store and the tracking stage call):

- the constructor stores its keyword arguments unchanged and does nothing else; they include
  `horizons`, the trading days ahead the model forecasts (strictly increasing);
- `fit(y, X=None)` learns from `y`, the log prices of a fold's train part (and `X`, the rows of
  the features stage's table `inputs_from` aligned with `y`, for the models whose
  `input_columns()` name some: the windows, or the covariate channels by day), and
  returns `self`; learned state lives in attributes ending in `_`; scalers, order selection and
  early stopping happen here, on the train part alone;
- `predict(y, n, X=None)` returns an `(n, len(horizons))` NumPy array of log-price forecasts
  from the last `n` cutoffs of `y` (which extends the train part with later observations):
  row `i` is forecast from cutoff `len(y) - n - 1 + i` and uses only `y[:len(y) - n + i]`,
  column `j` is the log price `horizons[j]` days after it. Models are never re-fitted inside
  `predict`;
- `predict_interval(y, n, X=None)`: an `(n, len(horizons), len(levels), 2)` array of log-price
  bounds where the model has its own intervals (`own_intervals`, e.g. ARIMA's Gaussian ones),
  else `None`: the walk-forward loop calibrates every model's intervals the same way
  (`pipeline.intervals`), and `pipeline.models.calibrated` serves them;
- `save(directory)` / `load(directory, params)`: the fitted model as safe files (no pickle);
- `covariates` (`features.covariates` the model reads, `()` for none) and `inputs(log_price,
  channel_values)`: the `X` a forecast outside the loop builds from the channels by day, the
  same rows the loop reads (`pipeline.forecast`, the served model);
- `parameter_counts()`, `learned()`, `history()`, `native(y, X)`: what the leaderboard and the
  tracking stage report (trainable weights by block, small learned values, training curves, the
  learned object for an MLflow flavour); `prepare()` imports what `fit` needs;
- `lag_gradients(windows)`: `(rows, n_lags)` standardised derivatives of the first forecast
  with respect to each lag of the price channel, or `None` (the default): the recurrent nets by their backward pass
  (Keras through JAX, the NumPy RNN by hand), a linear regressor by its coefficients;
  `pipeline.gradients` turns them into a profile by lag.

`Model` gives every optional part a default. A model with `warm_start=True` is fitted fold after
fold on the same object. `pipeline.models.store` saves fitted models, `pipeline.models.loader`
reads them back.
"""
