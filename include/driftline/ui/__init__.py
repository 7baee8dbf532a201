"""The driftline page: a FastAPI app (``app``) that Airflow's plugin mounts under
``/driftline``: models, reports, history and alerts, and a form to answer an alert.
"""
