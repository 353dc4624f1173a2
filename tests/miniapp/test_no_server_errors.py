"""Every API route and H5 page, fed odd input, answers 4xx (or 2xx), never a 500.

The API routes and their bodies come from the application's own OpenAPI document, so a route
added later is covered without touching this test; the pages come from their routers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.db import write_session
from app.main import create_app
from app.services.demo import seed_demo
from app.services.people import find_person
from miniapp_api import checkin, media, pages_activities, pages_evaluation, pages_me

PAGE_ROUTERS = (pages_activities.router, pages_evaluation.router, pages_me.router,
                checkin.page_router, media.router)

HUGE = 2**63  # past PostgreSQL's integer and past what SQLite's driver can bind
ODD_IDS = [str(HUGE), "99999999999", "abc", "0", "-1"]
ODD_QUERY = ["0000-01", "9999-12", "2099-01", "2026-13", "x" * 300, "a\x00b", ""]
# Platform callbacks have their own signed-request tests; logging in is not odd input.
SKIPPED = ("/bot/", "/api/v1/auth/")


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        return _resolve(schema["anyOf"][0], spec)
    return schema


def odd_body(schema: dict[str, Any], spec: dict[str, Any], odd: Any) -> Any:
    """A body of the schema's shape with every leaf replaced by `odd` (strings stay strings
    where the schema says so, so the odd value reaches past the validator)."""
    schema = _resolve(schema, spec)
    if schema.get("type") == "object" or "properties" in schema:
        return {k: odd_body(v, spec, odd) for k, v in schema.get("properties", {}).items()}
    if schema.get("type") == "array":
        return [odd_body(schema.get("items", {}), spec, odd)]
    if schema.get("type") == "string":
        return "a\x00b" + "x" * 300 if not isinstance(odd, str) else odd
    return odd


def requests_for(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, url, httpx keyword arguments) for each route and odd input."""
    for path, operations in spec["paths"].items():
        if path.startswith(SKIPPED):
            continue
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            content = (operation.get("requestBody") or {}).get("content", {})
            for n, odd_id in enumerate(ODD_IDS):
                url = path
                query = {}
                for p in params:
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", odd_id)
                    elif p["in"] == "query":
                        query[p["name"]] = ODD_QUERY[n % len(ODD_QUERY)]
                kwargs: dict[str, Any] = {"params": query}
                if "application/json" in content:
                    schema = content["application/json"]["schema"]
                    body = odd_body(schema, spec, [HUGE, float("nan"), "x", -1, None][n])
                    kwargs["content"] = json.dumps(body, allow_nan=True).encode()
                    kwargs["headers"] = {"content-type": "application/json"}
                yield method.upper(), url, kwargs


@pytest.fixture
def client(db: Engine, settings_env: Settings) -> Iterator[TestClient]:
    """The app with the demo organisation, logged in as a branch secretary."""
    with write_session(db) as s:
        seed_demo(session=s)
        secretary = find_person(session=s, key="demo-dt-001").id
    app = create_app(settings_env)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        assert client.post("/api/v1/auth/dev", json={"person_id": secretary}).status_code == 200
        yield client


def test_no_route_answers_odd_input_with_a_server_error(client):
    spec = client.get("/openapi.json").json()
    failures = []
    count = 0
    for method, url, kwargs in requests_for(spec):
        response = client.request(method, url, **kwargs)
        count += 1
        if response.status_code >= 500 and response.status_code != 503:  # 503: not configured
            failures.append(f"{method} {url[:80]} {kwargs.get('params')} -> "
                            f"{response.status_code}")
    assert count > 200  # every route was tried, not an empty spec
    assert failures == []


def test_no_page_answers_odd_input_with_a_server_error(client):
    failures = []
    count = 0
    for route in (r for router in PAGE_ROUTERS for r in router.routes):
        names = [p.name for p in route.dependant.query_params]
        for n, odd_id in enumerate(ODD_IDS):
            url = route.path
            for p in route.dependant.path_params:
                url = url.replace("{" + p.name + "}", odd_id if p.name != "period"
                                  else ODD_QUERY[n])
            query = {name: ODD_QUERY[n % len(ODD_QUERY)] for name in names}
            for method in route.methods - {"HEAD"}:
                response = client.request(method, url, params=query)
                count += 1
                if response.status_code >= 500:
                    failures.append(f"{method} {url[:80]} {query} -> {response.status_code}")
    assert count > 80
    assert failures == []
