"""Statistics: pure functions on arrays that return plain results; no store, no model file.

``measures`` (distances and tests between two distributions), ``kll`` (deterministic KLL
quantile sketches), ``profile`` (mergeable column profiles), ``multivariate`` (data
reconstruction and domain classifier), ``performance`` (model-quality metrics and the
estimators used before labels arrive), ``metric_names`` (which metrics exist, importable
without scipy), ``bias`` (SageMaker Clarify's post-training bias metrics).
"""
