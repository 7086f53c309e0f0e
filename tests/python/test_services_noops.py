"""Calls that would do nothing say so, and a service function that cannot be
called as fn(ctx) is refused when it is registered, not when it starts."""
from __future__ import annotations

import bgloop
import pytest

from _services_util import clean, drive, run, state  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean")


@pytest.mark.parametrize("call", [
    lambda: bgloop.start_services("nobody-registered-this"),
    lambda: bgloop.stop_services("nobody-registered-this"),
    lambda: run(bgloop.stop_services_async("nobody-registered-this")),
])
def test_an_owner_without_services_warns(caplog, call):
    with caplog.at_level("WARNING", logger="bgloop"):
        call()
    assert "'nobody-registered-this'): no service is registered for this owner" in caplog.text


def test_stopping_every_service_or_a_known_owner_does_not_warn(caplog):
    async def idle(ctx):
        ctx.ready()
        await ctx.stopping.wait()

    bgloop.service("known", owner="known-owner")(idle)
    bgloop.start_services("known-owner")
    drive(lambda: state("known") == "running")
    with caplog.at_level("WARNING", logger="bgloop"):
        bgloop.stop_services("known-owner")
        bgloop.stop_services()
    assert "no service is registered" not in caplog.text
    assert state("known") == "stopped"


async def no_ctx():
    pass


async def two_required(ctx, other):
    pass


async def keyword_only(*, ctx):
    pass


@pytest.mark.parametrize("fn", [no_ctx, two_required, keyword_only])
def test_a_function_that_cannot_take_ctx_is_refused_at_registration(fn):
    with pytest.raises(TypeError, match=r"service 'bad': .* must take the service context"):
        bgloop.service("bad", owner="sig")(fn)
    assert "bad" not in bgloop.status()


async def ctx_and_defaults(ctx, retries=3, *rest, flag=False):
    ctx.ready()
    await ctx.stopping.wait()


async def only_varargs(*args):
    args[0].ready()
    await args[0].stopping.wait()


@pytest.mark.parametrize("fn", [ctx_and_defaults, only_varargs])
def test_functions_callable_with_ctx_alone_are_accepted(fn):
    bgloop.service("good", owner="sig")(fn)
    bgloop.start_services("sig")
    drive(lambda: state("good") == "running")
