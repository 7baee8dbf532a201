"""The driftline page in the Airflow UI (Airflow 3.1+ plugin interface).

- ``fastapi_apps``: the app of ``driftline.ui.app`` mounted by the API server at ``/driftline``:
  the monitored models and their latest verdict, each run's report, the history, and the alerts
  with their feedback form. It reads the artifact store the DAGs write to
  (``DRIFTLINE_STORE_URL``, local or S3/MinIO through the Airflow connection
  ``DRIFTLINE_STORE_CONN_ID``) and the model files (``DRIFTLINE_MONITORS_DIR``).
- ``external_views``: a "driftline" entry in the UI's navigation that shows that page.

Plugin endpoints are not protected by Airflow on their own: every route here resolves the
Airflow user (the UI's session cookie or a bearer token) and refuses without one. Reading needs
a user; answering an alert needs edit rights on the model's monitoring DAG
(``driftline_monitor_<model>``), since an answer can silence its alerts. Answers are stored
under the user's name. A browser without a session is sent to Airflow's login page.
"""
from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse

from driftline.ui.app import Person, create_app
from driftline_airflow.links import URL_PREFIX
from driftline_airflow.runtime import get_store, load_configs


def _may_answer(user):
    """Answering can silence a model's alerts: it takes edit rights on its monitoring DAG."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    def may(model: str) -> bool:
        return get_auth_manager().is_authorized_dag(method="PUT", user=user,
                                                    details=DagDetails(id=f"driftline_monitor_{model}"))
    return may


async def current_user(user=Depends(get_user)) -> Person:
    return Person(name=user.get_name(), may_answer=_may_answer(user))


def _configs():
    return load_configs().models


app = create_app(store=get_store, configs=_configs, user=current_user)


@app.exception_handler(HTTPException)
async def _login_first(request: Request, exc: HTTPException):
    # A page opened without a session goes to the login page and comes back; API calls get the 401.
    if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return await http_exception_handler(request, exc)


class DriftlinePlugin(AirflowPlugin):
    name = "driftline"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "driftline"}]
    external_views = [{
        "name": "driftline",
        "href": URL_PREFIX.lstrip("/") + "/",
        "destination": "nav",
        "url_route": "driftline",
        "nav_top_level": True,
    }]
