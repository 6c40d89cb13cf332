"""What scripts/fuzz needs besides Schemathesis itself (runs in the fuzzing virtualenv).

    helper.py token                 an admin bearer token (HS256) from AUTH_JWT_* in the environment
    helper.py seed CMD QUERY DIR    creates a customer and orders in every state through the command
                                    service, waits until the query service shows them, and writes
                                    their ids as Schemathesis dictionaries into DIR; prints the
                                    customer id
    helper.py collect QUERY DIR     adds the ids of orders and customers the query service shows now
                                    (after the command service was fuzzed) to those dictionaries
    helper.py summary REPORT...     one table of what the runs did and found, from their JSON and
                                    NDJSON reports and the false positives hooks.py dropped; exits 1
                                    when a run failed or errored
"""

import collections
import json
import os
import sys
import time
import urllib.error
import urllib.request

import jwt


def token():
    claims = {
        "iss": os.environ["AUTH_JWT_ISSUER"],
        "aud": os.environ["AUTH_JWT_AUDIENCE"],
        "sub": "fuzz-admin",
        "scope": "admin",
        "exp": int(time.time()) + 6 * 3600,
    }
    print(jwt.encode(claims, os.environ["AUTH_JWT_HS256_SECRET"], algorithm="HS256"))


def call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", "Bearer " + os.environ["FUZZ_TOKEN"])
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode(errors="replace")


def command(base, method, path, body=None):
    status, headers, answer = call(method, base + path, body)
    if status not in (200, 201):
        sys.exit(f"seeding: {method} {path} answered {status}: {answer}")
    return answer, headers["x-consistency-token"]


def write_dictionary(directory, name, ids):
    # libFuzzer dictionary format, one quoted entry per line.
    with open(os.path.join(directory, name + ".dict"), "w") as out:
        out.writelines(f'"{value}"\n' for value in sorted(set(ids)))


def read_dictionary(directory, name):
    path = os.path.join(directory, name + ".dict")
    if not os.path.exists(path):
        return []
    return [line.strip().strip('"') for line in open(path) if line.strip()]


def seed(command_url, query_url, directory):
    customer, _ = command(command_url, "POST", "/customers", {"name": "Fuzz Seed", "email": "fuzz.seed@example.com"})
    customer_id = customer["customer_id"]
    item = {"sku": "SEED-1", "name": "Seed widget", "quantity": 2, "unit_price_cents": 1250}
    orders, token = [], None
    # One order per state, so commands on known orders reach every rule of the lifecycle.
    for steps in ([], ["confirm"], ["confirm", "ship"], ["confirm", "ship", "deliver"], ["cancel"]):
        order, token = command(command_url, "POST", "/orders", {"customer_id": customer_id, "items": [item]})
        order_id = order["order_id"]
        for step in steps:
            body = {"ship": {"carrier": "UPS", "tracking_number": "1Z999"}, "cancel": {"reason": "seed"}}.get(step)
            _, token = command(command_url, "POST", f"/orders/{order_id}/{step}", body)
        orders.append(order_id)
    # The query service has them once it has applied the last write (503 while it has not).
    for _ in range(100):
        status, _, answer = call("GET", f"{query_url}/orders/{orders[-1]}", headers={"X-Consistency-Token": token})
        if status != 503:
            break
        time.sleep(0.1)
    if status != 200:
        sys.exit(f"seeding: the query service did not show the seeded orders: {status} {answer}")
    write_dictionary(directory, "customer-ids", [customer_id])
    write_dictionary(directory, "order-ids", orders)
    print(customer_id)


def collect(query_url, directory):
    status, _, page = call("GET", f"{query_url}/orders?limit=100")
    if status != 200:
        sys.exit(f"collecting ids: GET /orders answered {status}: {page}")
    orders = read_dictionary(directory, "order-ids") + [o["order_id"] for o in page["items"]]
    customers = read_dictionary(directory, "customer-ids") + [o["customer_id"] for o in page["items"]]
    write_dictionary(directory, "order-ids", orders)
    write_dictionary(directory, "customer-ids", customers)


def summary(reports):
    failed = False
    rows, failures, errors, dropped = [], collections.Counter(), collections.Counter(), collections.Counter()
    names = []
    # (check, service) -> [evaluated, failed, known false positives dropped]
    per_check = collections.defaultdict(lambda: [0, 0, 0])
    for path in reports:
        name = os.path.basename(path).removesuffix(".json")
        names.append(name)
        try:
            report = json.load(open(path))
        except (OSError, ValueError):
            print(f"{name}: no report ({path})")
            failed = True
            continue
        requests, statuses = 0, collections.Counter()
        ndjson = path.removesuffix(".json") + ".ndjson"
        if os.path.exists(ndjson):
            for line in open(ndjson):
                event = json.loads(line).get("ScenarioFinished")
                if not event:
                    continue
                for interaction in (event["recorder"].get("interactions") or {}).values():
                    requests += 1
                    response = interaction.get("response")
                    statuses[f"{response['status_code'] // 100}xx" if response else "no response"] += 1
                for results in (event["recorder"].get("checks") or {}).values():
                    for result in results:
                        counts = per_check[(result["name"], name)]
                        counts[0] += 1
                        counts[1] += result["status"] == "failure"
        dropped_log = path.removesuffix(".json") + ".dropped.jsonl"
        if os.path.exists(dropped_log):
            for line in open(dropped_log):
                entry = json.loads(line)
                dropped[(name, f"{entry['code']} {entry['reason']}")] += 1
                per_check[(entry.get("check", "?"), name)][2] += 1
        operations = report.get("operations") or {}
        cases = report.get("test_cases") or {}
        rows.append((
            name,
            f"{operations.get('tested', 0)}/{operations.get('total', 0)}",
            cases.get("generated", 0),
            requests,
            " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
            sum(f["count"] for f in report.get("failures", [])),
            report.get("filtered", 0),
        ))
        for f in report.get("failures", []):
            failures[(name, f"{f['code']} {f['title']}")] += f["count"]
        for e in report.get("errors", []):
            errors[(name, e["title"])] += e["count"]
        failed |= report.get("exit_code", 1) != 0
    print()
    table(("service", "operations", "test cases", "requests", "responses", "failures", "known, dropped"), rows)
    print()
    checks = sorted({check for check, _ in per_check})
    table(
        ("check (evaluated / failed / known, dropped)", *names),
        [(check, *("{} / {} / {}".format(*per_check[(check, name)]) for name in names)) for check in checks],
    )
    print()
    for (name, what), count in sorted(dropped.items()):
        print(f"known    {name}: {what}: {count}")
    for (name, what), count in sorted(failures.items()):
        print(f"FAILURE  {name}: {what}: {count}")
    for (name, what), count in sorted(errors.items()):
        print(f"ERROR    {name}: {what}: {count}")
    if not failures and not errors and not failed:
        print("no failures")
    return 1 if failed else 0


def table(header, rows):
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["token"]:
            token()
        case ["seed", command_url, query_url, directory]:
            seed(command_url, query_url, directory)
        case ["collect", query_url, directory]:
            collect(query_url, directory)
        case ["summary", *reports]:
            sys.exit(summary(reports))
        case _:
            sys.exit(__doc__)
