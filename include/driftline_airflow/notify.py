"""Deliver driftline's alert messages through Airflow's own notifiers, and publish a run's
metrics to Amazon CloudWatch.

The library (driftline.stages.alerts) decides *what* to say and *whether* it was already said; this
module only delivers one message on one route and raises when it could not, so the caller
records a message as sent only after ``send`` returned.

A message is a JSON-safe dict: ``id`` (stable notification id, the idempotency key),
``event`` (firing | resolved), ``model``, ``check``, ``subject``, ``severity``, ``interval``,
``title`` (one line), ``text`` (may span lines) and ``links`` ({name: url}). ``title`` and
``text`` may carry text from the data (feature names, category values): every route escapes
it for its format, and nothing is rendered as a Jinja template (the notifiers' ``notify()``
is called directly, without ``render_template_fields``).

Routes (``alerts.routes`` in the model file) and the Airflow connections they need; secrets
live only in the connection, never in the model file::

    webhook  conn_type http: host, schema (http|https), port; login/password for basic auth;
             extra: other keys become request headers (e.g. {"Authorization": "Bearer ..."}),
             "timeout" (s, default 30). target: optional path ("/hooks/driftline").
             POSTs the message as JSON with an Idempotency-Key header (the message id).
    slack    conn_type slackwebhook: password = the webhook token "T000/B000/XXXX" (host
             defaults to https://hooks.slack.com/services) or the whole webhook URL.
    email    conn_type smtp: host, port, login/password; extra: {"from_email": "...",
             "disable_tls": true, "disable_ssl": true, "timeout": 30, "retry_limit": 5}
             (the TLS/SSL switches must be JSON booleans: the provider reads them with
             bool(), so the string "false" *disables*). target: recipients, comma-separated.
             Sender: the connection's from_email, else driftline@localhost.
    sns      conn_type aws: keys (or a role) as for any aws connection; extra
             {"region_name": "eu-west-1"} (and "endpoint_url" for an SNS-compatible server).
             target: the topic ARN (standard topics; the notifier cannot set the group id a
             FIFO topic needs).
    log      not delivered here: the caller logs the message.

Environment variables work as for any Airflow connection, e.g.
``AIRFLOW_CONN_ALERTS_HOOK='{"conn_type": "http", "host": "alerts.example.com", "schema": "https"}'``.
"""
from __future__ import annotations

import functools
import html
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from driftline.config import AlertRoute, CloudWatchOut

log = logging.getLogger("driftline")

DEFAULT_FROM_EMAIL = "driftline@localhost"
#: Seconds a webhook may take unless its connection's extra sets "timeout".
WEBHOOK_TIMEOUT = 30
#: SNS: subjects of at most 100 characters, no line breaks or control characters.
SNS_SUBJECT_MAX = 100
#: SNS: 256 KiB per message (attributes included); the hook JSON-encodes the message
#: (MessageStructure=json, non-ASCII as \\uXXXX), so the bound is on the encoded size.
SNS_MESSAGE_MAX_BYTES = 250_000
#: CloudWatch: at most 1000 datums per PutMetricData call ...
CLOUDWATCH_BATCH = 1000
#: ... with timestamps at most two weeks old (older datums fail the whole call).
CLOUDWATCH_MAX_AGE = timedelta(days=14)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def send(route: AlertRoute, message: dict, context: Any = None) -> str:
    """Deliver ``message`` on ``route``; return a short description ("webhook alerts_hook -> 200").

    Raises when the message could not be delivered (connection missing, server error,
    HTTP status >= 400, SMTP refusal, AWS error), so the caller does not record it as sent.
    ``context`` is the task's Airflow context (optional; only passed to the notifier).
    """
    ctx = context if context is not None else {}
    if route.type == "log":
        return "log"
    if route.type == "webhook":
        return _send_webhook(route, message, ctx)
    if route.type == "slack":
        return _send_slack(route, message, ctx)
    if route.type == "email":
        return _send_email(route, message, ctx)
    if route.type == "sns":
        return _send_sns(route, message, ctx)
    raise ValueError(f"alert route type {route.type!r} is not one of log, email, slack, sns, webhook")


# --- webhook ------------------------------------------------------------------------------

@functools.cache
def _webhook_classes():
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.providers.http.notifications.http import HttpNotifier

    class _StatusHttpHook(HttpHook):
        """HttpHook that keeps the response's status (HttpNotifier.notify drops the response)."""
        status_code: int | None = None

        def run_and_check(self, session, prepped_request, extra_options):
            response = super().run_and_check(session, prepped_request, extra_options)
            self.status_code = response.status_code
            return response

    class _HttpNotifier(HttpNotifier):
        @cached_property
        def hook(self) -> _StatusHttpHook:
            return _StatusHttpHook(method=self.method, http_conn_id=self.http_conn_id)

    return _StatusHttpHook, _HttpNotifier


def _send_webhook(route: AlertRoute, message: dict, context) -> str:
    hook_cls, notifier_cls = _webhook_classes()
    conn_extra = hook_cls.get_connection(route.conn_id).extra_dejson
    # check_response=True wins over a connection's {"check_response": false}: an error status
    # must fail the send, or the alert would be recorded as delivered.
    options: dict[str, Any] = {"check_response": True}
    if "timeout" not in conn_extra:
        options["timeout"] = WEBHOOK_TIMEOUT
    notifier = notifier_cls(
        http_conn_id=route.conn_id, endpoint=route.target or None, method="POST", json=message,
        headers={"Content-Type": "application/json", "Idempotency-Key": str(message["id"])},
        extra_options=options,
    )
    notifier.notify(context)
    return f"webhook {route.conn_id} -> {notifier.hook.status_code}"


# --- slack --------------------------------------------------------------------------------

def slack_escape(value: str) -> str:
    """Slack mrkdwn control characters: & < > must be sent as &amp; &lt; &gt;."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(message: dict) -> str:
    title = _one_line(message.get("title", ""))
    lines = [f"*{slack_escape(title)}*" if title else "", slack_escape(str(message.get("text", "")))]
    lines += [slack_escape(f"{name}: {url}") for name, url in _links(message)]
    return "\n".join(x for x in lines if x)


def _send_slack(route: AlertRoute, message: dict, context) -> str:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # retry_handlers=[]: slack_sdk's default connection-error retry logs the webhook URL, token
    # included, at INFO ("Going to retry the same request: POST https://hooks.slack.com/...");
    # the task's own retries cover a failed send.
    notifier = SlackWebhookNotifier(slack_webhook_conn_id=route.conn_id, text=slack_text(message),
                                    unfurl_links=False, unfurl_media=False, retry_handlers=[])
    notifier.notify(context)  # the hook raises unless Slack answers 200
    return f"slack {route.conn_id} -> 200"


# --- email --------------------------------------------------------------------------------

def email_html(message: dict) -> str:
    """The message as HTML; every value is escaped (html.escape), the text kept in a <pre>."""
    e = html.escape
    facts = " | ".join(f"{k}: {message[k]}" for k in ("model", "check", "subject", "severity", "event", "interval")
                       if message.get(k) not in (None, ""))
    parts = [f"<p><b>{e(_one_line(message.get('title', '')))}</b></p>",
             f"<pre>{e(str(message.get('text', '')))}</pre>"]
    if facts:
        parts.append(f"<p>{e(facts)}</p>")
    links = []
    for name, url in _links(message):
        if url.lower().startswith(("http://", "https://")):
            links.append(f'<li>{e(name)}: <a href="{e(url, quote=True)}">{e(url)}</a></li>')
        else:  # file:// and s3:// are not clickable in mail clients; javascript: must never be
            links.append(f"<li>{e(name)}: {e(url)}</li>")
    if links:
        parts.append("<ul>" + "".join(links) + "</ul>")
    parts.append(f"<p><small>notification id: {e(str(message.get('id', '')))}</small></p>")
    return "\n".join(parts)


def _send_email(route: AlertRoute, message: dict, context) -> str:
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    if not route.target or not route.target.strip():
        raise ValueError(f"alert route email ({route.conn_id}) needs a target: the recipients, comma-separated")
    # from_email is always given: left None, the notifier would Jinja-render it and its
    # default subject/body templates with the task context.
    sender = SmtpHook.get_connection(route.conn_id).extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL
    notifier = SmtpNotifier(smtp_conn_id=route.conn_id, from_email=sender, to=route.target,
                            subject=_one_line(message.get("title", "")) or "[driftline] alert",
                            html_content=email_html(message))
    notifier.notify(context)
    recipients = [r for r in re.split(r"\s*[,;]\s*", route.target.strip()) if r]
    return f"email {route.conn_id} -> {', '.join(recipients)}"


# --- sns ----------------------------------------------------------------------------------

def sns_subject(title: str) -> str | None:
    subject = _one_line(title)
    if len(subject) > SNS_SUBJECT_MAX:
        subject = subject[:SNS_SUBJECT_MAX - 3].rstrip() + "..."
    return subject or None


def plain_text(message: dict) -> str:
    lines = [_one_line(message.get("title", "")), "", str(message.get("text", ""))]
    links = [f"{name}: {url}" for name, url in _links(message)]
    if links:
        lines += [""] + links
    return "\n".join(lines).strip()


def _send_sns(route: AlertRoute, message: dict, context) -> str:
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    if not route.target:
        raise ValueError(f"alert route sns ({route.conn_id}) needs a target: the topic ARN")
    attributes = {k: str(message[k]) for k in ("severity", "event", "model") if message.get(k) not in (None, "")}
    notifier = SnsNotifier(aws_conn_id=route.conn_id, target_arn=route.target,
                           subject=sns_subject(message.get("title", "")),
                           message=_fit_json(plain_text(message), SNS_MESSAGE_MAX_BYTES),
                           message_attributes=attributes or None)
    notifier.notify(context)
    return f"sns {route.conn_id} -> {route.target}"


# --- cloudwatch ---------------------------------------------------------------------------

def cloudwatch_datums(model: str, interval_start: datetime, rows: Iterable[dict]) -> list[dict]:
    """Rows {"metric", "segment", "value", "kind"} -> CloudWatch MetricDatum dicts; rows whose
    value is None, NaN or infinite (CloudWatch rejects those) are left out."""
    ts = interval_start if interval_start.tzinfo else interval_start.replace(tzinfo=timezone.utc)
    datums = []
    for row in rows:
        value = row.get("value")
        if value is None or isinstance(value, str):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        dims = [{"Name": "Model", "Value": model}]
        if row.get("segment") not in (None, ""):
            # a value from the data; CloudWatch refuses dimension values over 1024 characters
            dims.append({"Name": "Segment", "Value": str(row["segment"])[:1024]})
        if row.get("kind") not in (None, ""):
            dims.append({"Name": "Kind", "Value": str(row["kind"])})
        datums.append({"MetricName": str(row["metric"]), "Dimensions": dims, "Timestamp": ts, "Value": value})
    return datums


def publish_cloudwatch(settings: CloudWatchOut, model: str, interval_start: datetime, rows: list[dict]) -> int:
    """Put the run's metric rows to CloudWatch (namespace ``settings.namespace``, dimensions
    Model, Segment when set, Kind; timestamp = the interval start), at most 1000 datums per
    call. Returns the number of datums sent.

    CloudWatch refuses timestamps more than two weeks old: a backfill of older intervals
    sends nothing and logs a warning (the run's metrics are still in the store).
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    datums = cloudwatch_datums(model, interval_start, rows)
    if not datums:
        return 0
    ts = datums[0]["Timestamp"]
    if ts < datetime.now(timezone.utc) - CLOUDWATCH_MAX_AGE:
        log.warning("cloudwatch: %s: interval %s is more than 14 days old, which CloudWatch refuses; "
                    "%d metric values not published (they are in the store)", model, ts.isoformat(), len(datums))
        return 0
    client = AwsBaseHook(aws_conn_id=settings.conn_id, client_type="cloudwatch",
                         region_name=settings.region).get_conn()
    sent = 0
    for batch in _batches(datums, CLOUDWATCH_BATCH):
        client.put_metric_data(Namespace=settings.namespace, MetricData=batch)
        sent += len(batch)
        log.info("cloudwatch: %s: put %d metric values to namespace %s", model, len(batch), settings.namespace)
    return sent


# --- helpers ------------------------------------------------------------------------------

def _one_line(value: Any) -> str:
    """Headers and subjects: no line breaks or control characters (no header injection)."""
    return _CONTROL.sub(" ", str(value)).strip()


def _links(message: dict) -> list[tuple[str, str]]:
    links = message.get("links") or {}
    return [(str(k), str(v)) for k, v in links.items() if v]


def _fit_json(text: str, max_bytes: int) -> str:
    """Cut ``text`` so that its JSON encoding fits ``max_bytes``."""
    size = len(json.dumps(text))
    if size <= max_bytes:
        return text
    note = "\n... (truncated; see the artifacts)"
    keep = int(len(text) * (max_bytes - 200) / size)
    while keep > 0 and len(json.dumps(text[:keep] + note)) > max_bytes:
        keep = int(keep * 0.9)
    return text[:keep] + note


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
