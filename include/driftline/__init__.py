"""driftline: open model monitoring. The library half: pure Python, no Airflow import.

The packages follow the layers of the system, each importing only those below it
(``.importlinter`` enforces it)::

    cli, ui          the ``driftline`` command; the driftline page (FastAPI, mounted in Airflow)
    demo             the demo scenario (traffic, labels, training data, a model)
    pipeline         one interval, stage by stage: what a DAG task or the CLI calls
    render           HTML built from the records: the run report, the history page
    stages           ingest, baseline, data_quality, drift, labels, model_quality,
                     alerts, answers, feedback, retrain
    io               one reader for every input format and location
    store            the artifact store, leases, versions, per-run records, history
    config           the model file: schema and loading
    stats            measures, sketches, profiles, metrics, estimators: pure functions
    common           bounded text and values, threshold crossings, bounded YAML, HTML basics
"""
__version__ = "0.1.0"
