"""Schemathesis over /openapi.json against the live test server: no input, valid or not, may
get a 5xx, and every response must match its description (status, media type, schema).

Marked `schemathesis`; runs where the real services are (the first pass of .ci/run), bounded
by FUZZ_EXAMPLES examples per operation and mode. One test walks every operation and reports
all failing ones together (schemathesis's pytest fixture loader does not run on pytest 9).
"""
from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig

from tests.conftest import REAL_SERVICES
from web.openapi import build_spec

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# Logging out would revoke the token every other call uses.
LEFT_OUT = {"/api/v1/auth/logout"}
SHOWN_LINES = 30
CONFIG = {
    # Unknown query parameters are ignored by design (docs/api.md: tokens and cache busters travel
    # there), and the token is always sent, so neither counts as invalid input.
    "generation": {"allow-extra-parameters": False, "with-security-parameters": False},
    # A schema-valid request may still be refused by a rule a schema cannot state (an unknown
    # model name, a file that is not a PDF): 4xx is then right. What stays checked: no 5xx,
    # answers as described, invalid input refused.
    # Too long is refused as too long: 413 (body) and 414 (URL) count as refusals too.
    "checks": {"positive_data_acceptance": {"enabled": False},
               "negative_data_rejection": {"expected-statuses": [
                   "400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429"]}},
}

pytestmark = [pytest.mark.schemathesis,
              pytest.mark.skipif(not REAL_SERVICES, reason="fuzzes the real services (DATABASE_URL, REDIS_URL)")]


@pytest.fixture(scope="module")
def fully_configured(settings, fake_upstream):
    """A deployment with both upstreams (without a fallback, its test endpoint answers 503)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "fallback_openai_base_url", fake_upstream.base_url)
        patch.setattr(settings, "fallback_openai_api_key", "fallback-key")
        yield


@pytest.fixture(scope="module")
def fuzz_token(server) -> str:
    account = {"email": "fuzz@example.com", "username": "fuzzer", "password": "correct horse battery"}
    with httpx.Client(base_url=server, timeout=10.0) as client:
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        return client.post("/api/v1/auth/login", json=account).json()["access_token"]


def fuzz(operation, mode: schemathesis.GenerationMode, server: str, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        case.call_and_validate(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    try:
        run()
    except Unsatisfiable:
        assert mode is schemathesis.GenerationMode.NEGATIVE  # nothing to make invalid (no input)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_input_breaks_the_api(app, server, fully_configured, fuzz_token, mode):
    spec = build_spec(app)
    spec["paths"] = {path: {method: op for method, op in ops.items() if "101" not in op["responses"]}
                     for path, ops in spec["paths"].items() if path not in LEFT_OUT}  # WebSockets are not HTTP
    failures = {}
    config = SchemathesisConfig.from_dict(CONFIG)
    for result in schemathesis.openapi.from_dict(spec, config=config).get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation, mode, server, fuzz_token)
        except BaseException as exc:  # schemathesis raises a BaseExceptionGroup; report all at the end
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            failures[operation.label] = "\n    ".join(str(exc).splitlines()[:SHOWN_LINES])
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(
        f"{label}:\n    {text}" for label, text in failures.items())
