"""The sample events shipped for `sam local invoke` stay valid: each one goes
through the real handler it was written for and does what its name says."""

import json

from support.stack import InProcessStack, load_event_file


def _invoke(stack: InProcessStack, function: str, event: dict) -> dict:
    return stack.functions[function].invoke(event)


def _with_key(name: str, key: str, account_id: str | None = None) -> dict:
    text = json.dumps(load_event_file(name))
    text = text.replace("REPLACE_WITH_WRITE_KEY", key).replace("REPLACE_WITH_READ_KEY", key)
    if account_id:
        text = text.replace("acc_demo", account_id)
    return json.loads(text)


def test_shipped_events_drive_ingest_evaluate_and_report(stack: InProcessStack) -> None:
    created = _invoke(stack, "IngestFunction", load_event_file("create_account.json"))
    assert created["statusCode"] == 201
    account = json.loads(created["body"])
    write, read = account["keys"]["write"], account["keys"]["read"]

    for name in ("call_qualified.json", "page_view.json"):
        response = _invoke(stack, "IngestFunction", _with_key(name, write))
        assert response["statusCode"] == 202, response["body"]
        assert len(json.loads(response["body"])["accepted"]) == 1

    stream_event = _with_key("stream_call_inserted.json", write, account["account_id"])
    assert _invoke(stack, "EvaluateFunction", stream_event) == {"batchItemFailures": []}

    report = _invoke(stack, "ReportsFunction", _with_key("report_goals.json", read))
    assert report["statusCode"] == 200
    rows = {row["name"]: row for row in json.loads(report["body"])["goals"]}
    assert rows["Call Qualified"]["counted"] == 1
