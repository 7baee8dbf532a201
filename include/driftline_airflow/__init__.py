"""Airflow-side glue for driftline: the only package here that imports Airflow."""
