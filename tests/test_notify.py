"""driftline_airflow.notify against real servers on loopback: an HTTP receiver (webhook,
Slack), aiosmtpd (email) and moto's standalone server (SNS -> SQS, CloudWatch). The
notifiers are Airflow's own; connections come from AIRFLOW_CONN_* variables."""
from __future__ import annotations

import email
import json
import logging
import math
import socket
import threading
from datetime import datetime, timedelta, timezone
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftline.config import AlertRoute, CloudWatchOut
from driftline_airflow.notify import publish_cloudwatch, send

NASTY = "{{ 7*7 }}"
SCRIPT = "<script>alert(1)</script>"
MESSAGE = {
    "id": "churn:drift:monthly_charges:2026-10-05T00:00:00Z:firing",
    "event": "firing", "model": "churn", "check": "baseline_drift_check", "subject": "monthly_charges",
    "severity": "warning", "interval": "2026-10-05T00:00:00+00:00",
    "title": f"[driftline] WARNING churn: drift in {NASTY} & more",
    "text": f"monthly_charges: PSI 0.31 > 0.20 against baseline v3\nplan: new category {SCRIPT} (12%)\n"
            f"feature {NASTY}: {{% if true %}}x{{% endif %}}",
    "links": {"artifacts": "file:///data/runs/churn/2026-10-05T00-00-00Z"},
}


def _aws_conn(endpoint: str) -> str:
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                       "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})


# --- an HTTP receiver -------------------------------------------------------------------

class _Receiver(ThreadingHTTPServer):
    status = 200
    reply = b"ok"

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(self.server.reply)))
        self.end_headers()
        self.wfile.write(self.server.reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- webhook ------------------------------------------------------------------------------

def test_webhook_posts_the_message_with_its_idempotency_key(receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_HOOK", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.server_port, "schema": "http"}))
    route = AlertRoute(type="webhook", conn_id="alerts_hook", target="/hooks/driftline")

    assert send(route, MESSAGE) == "webhook alerts_hook -> 200"

    (req,) = receiver.requests
    assert req["path"] == "/hooks/driftline"
    assert json.loads(req["body"]) == MESSAGE  # {{ 7*7 }} and {% %} delivered literally, not rendered
    assert req["headers"]["Idempotency-Key"] == MESSAGE["id"]
    assert req["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("extra", [{}, {"check_response": False}])
def test_webhook_error_status_raises(receiver, monkeypatch, extra):
    receiver.status = 500
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_HOOK", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.server_port, "schema": "http", "extra": extra}))
    with pytest.raises(Exception, match="500"):
        send(AlertRoute(type="webhook", conn_id="alerts_hook"), MESSAGE)
    assert len(receiver.requests) == 1


def test_log_route_is_not_delivered_here():
    assert send(AlertRoute(type="log"), MESSAGE) == "log"


# --- slack --------------------------------------------------------------------------------

def test_slack_escapes_mrkdwn_and_keeps_templates_literal(receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{receiver.server_port}",
         "password": "T000/B000/XXXX"}))
    route = AlertRoute(type="slack", conn_id="slack_alerts")

    assert send(route, MESSAGE) == "slack slack_alerts -> 200"

    (req,) = receiver.requests
    assert req["path"] == "/T000/B000/XXXX"  # host + "/" + token
    text = json.loads(req["body"])["text"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "drift in {{ 7*7 }} &amp; more" in text and "49" not in text
    assert "file:///data/runs/churn/2026-10-05T00-00-00Z" in text

    receiver.status, receiver.reply = 404, b"no_service"
    with pytest.raises(Exception, match="404"):
        send(route, MESSAGE)


def test_slack_unreachable_raises_without_logging_the_token(monkeypatch, caplog, capfd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{port}", "password": "T000/B000/SECRETTOKEN"}))
    with caplog.at_level(logging.INFO), pytest.raises(Exception):
        send(AlertRoute(type="slack", conn_id="slack_alerts"), MESSAGE)
    out, err = capfd.readouterr()  # Airflow's structlog writes to the console, not to caplog
    logged = caplog.text + out + err
    assert "Failed to send a request to Slack" in logged  # the hook's log is captured ...
    assert "SECRETTOKEN" not in logged  # ... and holds no token


# --- email --------------------------------------------------------------------------------

class _Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:  # aiosmtpd needs a fixed port (it connects to it to start)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.mark.parametrize("from_email", ["monitor@example.com", None])
def test_email_escapes_html_and_sends_to_each_recipient(smtp_server, monkeypatch, from_email):
    inbox, port = smtp_server
    extra = {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}
    if from_email:
        extra["from_email"] = from_email
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}))
    route = AlertRoute(type="email", conn_id="smtp_alerts", target="oncall@example.com, ml@example.com")

    assert send(route, MESSAGE) == "email smtp_alerts -> oncall@example.com, ml@example.com"

    (env,) = inbox.envelopes
    assert env.mail_from == (from_email or "driftline@localhost")
    assert env.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["Subject"] == MESSAGE["title"]  # literal {{ 7*7 }}, not 49
    body = msg.get_body(("html",)).get_content()
    assert "<pre>" in body and "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "{{ 7*7 }} &amp; more" in body and "{% if true %}x{% endif %}" in body


def test_email_header_injection_is_flattened(smtp_server, monkeypatch):
    inbox, port = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
         "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0}}))
    message = dict(MESSAGE, title="drift in x\r\nBcc: victim@example.com")
    send(AlertRoute(type="email", conn_id="smtp_alerts", target="oncall@example.com"), message)
    (env,) = inbox.envelopes
    assert env.rcpt_tos == ["oncall@example.com"]
    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["Bcc"] is None and msg["Subject"] == "drift in x Bcc: victim@example.com"


# --- sns and cloudwatch (moto) ------------------------------------------------------------

@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _client(service: str, endpoint: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_sns_publishes_subject_message_and_attributes(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ALERTS", _aws_conn(moto_endpoint))
    sns, sqs = _client("sns", moto_endpoint), _client("sqs", moto_endpoint)
    topic = sns.create_topic(Name="driftline-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="driftline-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    long_title = MESSAGE["title"] + " and " + "x" * 200
    message = dict(MESSAGE, title=long_title)

    assert send(AlertRoute(type="sns", conn_id="aws_alerts", target=topic), message) == f"sns aws_alerts -> {topic}"

    (received,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    note = json.loads(received["Body"])
    assert len(note["Subject"]) == 100 and note["Subject"].startswith("[driftline] WARNING churn: drift in {{ 7*7 }}")
    assert note["Subject"].endswith("...")
    assert note["Message"].startswith(long_title + "\n\n" + MESSAGE["text"])
    assert SCRIPT in note["Message"]  # plain text: nothing to escape
    assert "artifacts: file:///data/runs/churn/2026-10-05T00-00-00Z" in note["Message"]
    attrs = {k: v["Value"] for k, v in note["MessageAttributes"].items()}
    assert attrs == {"severity": "warning", "event": "firing", "model": "churn"}


def test_sns_missing_topic_raises(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ALERTS", _aws_conn(moto_endpoint))
    with pytest.raises(Exception, match="(?i)not ?found|does not exist"):
        send(AlertRoute(type="sns", conn_id="aws_alerts", target="arn:aws:sns:us-east-1:123456789012:nope"), MESSAGE)


def test_cloudwatch_batches_and_reads_back(moto_endpoint, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_CW", _aws_conn(moto_endpoint))
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = [{"metric": "drift.score", "segment": f"s{i:04d}", "value": i / 1000, "kind": "realized"}
            for i in range(1499)]
    rows += [{"metric": "accuracy", "segment": "", "value": 0.91, "kind": "estimated"},
             {"metric": "accuracy", "segment": "x", "value": None, "kind": "realized"},
             {"metric": "accuracy", "segment": "y", "value": math.nan, "kind": "realized"}]
    settings = CloudWatchOut(enabled=True, conn_id="aws_cw", namespace="driftline-test", region="us-east-1")

    with caplog.at_level(logging.INFO, logger="driftline"):
        assert publish_cloudwatch(settings, "churn", start, rows) == 1500
    assert [r.getMessage() for r in caplog.records if "put" in r.getMessage()] == [
        "cloudwatch: churn: put 1000 metric values to namespace driftline-test",
        "cloudwatch: churn: put 500 metric values to namespace driftline-test"]

    cw = _client("cloudwatch", moto_endpoint)
    metrics = [m for page in cw.get_paginator("list_metrics").paginate(Namespace="driftline-test")
               for m in page["Metrics"]]
    assert len(metrics) == 1500
    acc = [m for m in metrics if m["MetricName"] == "accuracy"]
    assert acc == [{"Namespace": "driftline-test", "MetricName": "accuracy",
                    "Dimensions": [{"Name": "Model", "Value": "churn"}, {"Name": "Kind", "Value": "estimated"}]}]
    dims = [{"Name": "Model", "Value": "churn"}, {"Name": "Segment", "Value": "s0310"},
            {"Name": "Kind", "Value": "realized"}]
    metric = {"Namespace": "driftline-test", "MetricName": "drift.score", "Dimensions": dims}
    got = cw.get_metric_data(
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": metric, "Period": 3600, "Stat": "Maximum"}}],
        StartTime=start - timedelta(hours=1), EndTime=start + timedelta(hours=1))["MetricDataResults"][0]
    assert got["Values"] == [pytest.approx(0.31)]
    assert got["Timestamps"][0] == start


def test_cloudwatch_skips_intervals_cloudwatch_refuses(monkeypatch, caplog):
    # no server: nothing may be sent for an interval older than CloudWatch's two weeks
    monkeypatch.setenv("AIRFLOW_CONN_AWS_CW", _aws_conn("http://127.0.0.1:9"))
    settings = CloudWatchOut(enabled=True, conn_id="aws_cw")
    old = datetime.now(timezone.utc) - timedelta(days=30)
    with caplog.at_level(logging.WARNING, logger="driftline"):
        assert publish_cloudwatch(settings, "churn", old, [{"metric": "m", "segment": "", "value": 1.0,
                                                             "kind": "realized"}]) == 0
    assert "more than 14 days old" in caplog.text
    assert publish_cloudwatch(settings, "churn", old, [{"metric": "m", "value": None}]) == 0
