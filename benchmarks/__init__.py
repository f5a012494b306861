"""Speed and memory figures of the pipeline beside the alternatives, measured side by side.

    make bench                      # installs the benchmark extra (statsforecast), runs them all
    python -m benchmarks            # all of them: arima recurrent repro scaling backends
    python -m benchmarks arima      # one (or several) by name

Each benchmark prints a table (Markdown, ready for the README) and its result is stored under its
name in `reports/bench.json`, replacing that benchmark's previous entry. Figures compared with
each other are measured in the same run on the same machine; ratios travel better than seconds.
Nothing here is asserted by the test suite: these are measurements, not checks.
"""
