"""driftline: open model monitoring. The library half: pure Python, no Airflow import.

Modules follow the pipeline stages: ``config`` (model registration), ``store`` (artifact
store), ``demo`` (the demo scenario), ``baseline``, ``ingest``, ``quality`` (Great
Expectations), ``monitor`` (one interval end to end), ``cli``.
"""
__version__ = "0.1.0"
