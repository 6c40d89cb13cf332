"""Schemathesis hooks of scripts/fuzz: the known false positives, each dropped by a narrow filter.

A failure is dropped only when the response is exactly the documented answer to a rule that a
JSON Schema cannot state or that depends on earlier requests, or when the request did not match
the documented schema after all; everything else still fails the run. The summary counts what
was dropped ("known, dropped").
"""

import json
import os

import jsonschema_rs
import schemathesis

# Field errors of rules between fields, or between a request and the stored data, that no schema
# of the request can express: (field, start of the message).
RULES_NO_SCHEMA_CAN_STATE = {
    # POST /orders: each SKU once per order ("items[3].sku").
    ("sku", "appears on an earlier line"),
    # POST /orders: the customer must be registered (the examples phase ignores the override of
    # `customer_id` in schemathesis.toml).
    ("customer_id", "no customer with this id is registered"),
    # GET /orders: the time window must not be empty.
    ("placed_before", "must be later than placed_after"),
    # GET /reports/daily-sales: from ≤ to, at most 366 days.
    ("from", "must not be after to"),
    ("to", "the range may cover at most 366 days"),
}


def problem(response):
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def only_such_rules(body):
    errors = body.get("errors") or []
    return body.get("type") == "/problems/validation" and errors and all(
        any(
            error.get("field", "").rsplit(".", 1)[-1] == field and error.get("message", "").startswith(message)
            for field, message in RULES_NO_SCHEMA_CAN_STATE
        )
        for error in errors
    )


def nonconforming_parameter(case):
    """The first path, query or header parameter whose value does not match its schema, if any.

    Schemathesis 4.32's coverage phase, in `--mode all`, sometimes labels a test case positive
    although an optional header in it carries one of the phase's negative values (`If-Match: 0`,
    `X-Consistency-Token: 0`), apparently where it cannot build a value for a header pattern
    that needs punctuation (`"`, `*`, `.`); the server's 400 to those is right.
    """
    containers = {"path": case.path_parameters, "query": case.query, "header": case.headers}
    for parameter in case.operation.definition.raw.get("parameters", []):
        values = {k.lower(): v for k, v in (containers.get(parameter["in"]) or {}).items()}
        value = values.get(parameter["name"].lower())
        schema = parameter.get("schema") or {}
        if value is None:
            continue
        if schema.get("type") == "integer" and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                return parameter["name"]
        if not jsonschema_rs.validator_for(schema).is_valid(value):
            return parameter["name"]
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    reason = known_false_positive(failure, case, response)
    if reason is None:
        return True
    # scripts/fuzz counts them by reason in its summary.
    if os.environ.get("FUZZ_DROPPED_LOG"):
        with open(os.environ["FUZZ_DROPPED_LOG"], "a") as log:
            entry = {
                "check": ",".join(failure.checks),
                "code": failure.code,
                "operation": case.operation.label,
                "reason": reason,
                "case": case.id,
            }
            log.write(json.dumps(entry) + "\n")
    return False


def known_false_positive(failure, case, response):
    body = problem(response)
    kind = body.get("type")
    if failure.code == "ST202":  # positive_data_acceptance: a schema-valid request was refused
        if response.status_code == 422 and kind == "/problems/idempotency-key-reused":
            return "Idempotency-Key reused with another request (generated keys repeat)"
        if response.status_code == 422 and only_such_rules(body):
            return "rule no schema can state: " + ", ".join(sorted({e["message"] for e in body["errors"]}))
        if name := nonconforming_parameter(case):
            return f"labelled positive, but {name} does not match its schema"
    if failure.code == "ST201":  # negative_data_rejection: a schema-violating request accepted
        # Refused, not accepted: a generated body over HTTP_BODY_LIMIT_BYTES is answered 413
        # before anything reads it, a status Schemathesis does not count as a rejection.
        if response.status_code == 413:
            return "413: the body is over HTTP_BODY_LIMIT_BYTES (refused unread)"
    if failure.code == "ST101":  # not_a_server_error
        # A well-formed X-Consistency-Token (or ?min_version=) naming a write that never happens:
        # the documented 503 after CONSISTENCY_WAIT_MS, with Retry-After.
        if response.status_code == 503 and kind == "/problems/not-yet-consistent":
            return "503 not-yet-consistent: the token names a write that never happens"
    return None
