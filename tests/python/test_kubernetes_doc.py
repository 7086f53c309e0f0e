"""docs/kubernetes.md against the code: the manifest's probes use the health
service's paths and default port, its grace period is above the service
manager's bound on the stop of the worker it describes, and the numbers the
text quotes are the code's defaults."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
import yaml

import bgloop
from bgloop import _bgloop, services

DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
health_mod = sys.modules["bgloop.health"]


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def manifest() -> dict:
    text = _doc()
    blocks = re.findall(r"(<!-- snippet: ([^>]*) -->\n)?```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/kubernetes.md should have one YAML block"
    _, marker, body = blocks[0]
    assert marker.startswith("not run: "), "the manifest must be marked not run, with a reason"
    return yaml.safe_load(body)


def _container(manifest: dict) -> dict:
    assert manifest["kind"] == "Deployment"
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return container


def test_probes_use_the_health_service_paths_and_port(manifest):
    c = _container(manifest)
    assert c["readinessProbe"]["httpGet"] == {"path": health_mod.READINESS_PATH,
                                              "port": health_mod.DEFAULT_PORT}
    assert c["livenessProbe"]["httpGet"] == {"path": health_mod.LIVENESS_PATH,
                                             "port": health_mod.DEFAULT_PORT}
    assert [p["containerPort"] for p in c["ports"]] == [health_mod.DEFAULT_PORT]
    script = c["command"][-1]
    assert "bgloop.health_service(host='0.0.0.0')" in script and "bgloop.serve()" in script
    params = inspect.signature(bgloop.health_service).parameters
    assert params["port"].default == health_mod.DEFAULT_PORT


def _stop_bound_of_the_worker() -> float:
    """What serve() may take on SIGTERM for the documented worker: the
    health service and one add-on service, both with the service
    manager's default stop timeout, plus serve()'s margin."""
    loop = bgloop.new_event_loop()
    try:
        c = _bgloop.Services(loop._core)
        c.set_hooks(start=lambda host: None, stop=lambda host: None,
                    cancel=lambda host: None, close=lambda obj, done: done())
        c.add(health_mod.DEFAULT_SERVICE, health_mod.DEFAULT_SERVICE, None)
        c.add("my_addon.work", "my_addon", None)
        bound = c.stop_bound()
        del c
    finally:
        loop.close()
    return bound + services.STOP_MARGIN


def test_the_grace_period_is_above_the_stop_bound(manifest):
    grace = manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    bound = _stop_bound_of_the_worker()
    assert grace > bound, (grace, bound)
    # The text quotes that bound as "N s + 1 s".
    quoted = re.search(r"the bound is (\d+) s \+ (\d+) s", _doc())
    assert quoted, "docs/kubernetes.md should quote the stop bound"
    assert float(quoted.group(1)) + float(quoted.group(2)) == pytest.approx(bound)
    assert float(quoted.group(2)) == services.STOP_MARGIN


def test_the_quoted_limits_are_the_defaults():
    text = _doc()
    params = inspect.signature(bgloop.health_service).parameters
    assert f"headers over\n{params['max_header'].default // 1024} KiB" in text
    assert f"within {params['timeout'].default:g} s" in text
    assert f"beyond\n{params['max_connections'].default} open connections" in text
    assert f"port {health_mod.DEFAULT_PORT} (`bgloop.health.DEFAULT_PORT`)" in text
