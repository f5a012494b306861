"""Experiment tracking in MLflow, used by the `track` stage (`pipeline.track`) and the forecast
command: the only code that imports mlflow. One module per concern: `store` (where runs go),
`provenance` (what a run is tagged with), `served` (the model the registry serves), `flavours`
(logging a fitted model), `runs` (the runs of one pipeline run), `registry` (the champions).
"""
