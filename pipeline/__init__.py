"""stockcast: an honest walk-forward comparison of naive, ARIMA, scikit-learn and Keras forecasts."""
