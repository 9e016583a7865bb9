"""Properties of plans over catalogues changed by random sequences of operations."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from routing import ops
from routing.errors import RoutingError
from routing.plan import CANDIDATE_REASONS, CHAIN, SKIP_REASONS, FallbackPolicy, plan_in
from routing.service import resolve_in
from routing.snapshot import load_catalogue
from storage.db import make_engine, make_session_factory
from storage.models import ModelRelease
from tests.helpers import reset_database, seed

MODELS = ("yandexgpt", "yandexgpt-lite", "GigaChat", "GigaChat-Pro")
CHANNELS = ("latest", "rc", "deprecated")
ORDER = {"requested": 0, "sunset_redirect": 0, "version_fallback": 1, "explicit": 2}
ORDER["cross_provider"] = 3
NOW, LATER = datetime(2026, 12, 1), datetime(2027, 6, 1)

targets = st.tuples(st.sampled_from(MODELS), st.sampled_from((None, *CHANNELS)))
operations = st.one_of(
    st.tuples(st.just("promote"), st.sampled_from(MODELS)),
    st.tuples(st.just("rollback"), st.sampled_from(MODELS)),
    st.tuples(st.just("deprecate"), targets),
    st.tuples(st.just("retire"), targets),
    st.tuples(
        st.just("pin"), st.sampled_from(MODELS), st.sampled_from(CHANNELS), st.integers(0, 3)
    ),
    st.tuples(st.just("policy"), st.sampled_from(MODELS), st.sampled_from(("redirect", "reject"))),
)
policies = st.builds(
    FallbackPolicy,
    cross_provider=st.booleans(),
    explicit=st.lists(st.sampled_from(MODELS), max_size=2).map(tuple),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "catalogue.db"
    reset_database(f"sqlite:///{path}")
    seed(f"sqlite:///{path}")
    return path


def apply(session, op) -> None:
    name, *args = op
    try:
        if name in ("promote", "rollback"):
            getattr(ops, name)(
                session, args[0], actor="prop", **({"now": NOW} if name == "promote" else {})
            )
        elif name in ("deprecate", "retire"):
            model, channel = args[0]
            target = f"{model}:{channel}" if channel else model
            getattr(ops, name)(session, target, actor="prop", now=NOW)
        elif name == "pin":
            model, channel, n = args
            ops.pin(session, model, channel, f"9.{n}", actor="prop", upstream_id=f"{model}/v{n}")
        else:
            ops.set_policy(session, args[0], actor="prop", sunset_policy=args[1])
        session.commit()
    except RoutingError:  # a refused operation (conflict, unknown) changes nothing
        session.rollback()


def check_plan(catalogue, model_id, policy, now) -> None:
    try:
        result = plan_in(catalogue, model_id, policy, now=now)
    except RoutingError:
        return
    assert resolve_in(catalogue, model_id, now) == result.route
    routes = [c.route for c in result.candidates]
    assert len({(r.provider, r.upstream_id) for r in routes}) == len(routes)
    for route in routes:
        assert route.status != "retired"
        assert route.sunset_at is None or route.sunset_at > now
        assert policy.cross_provider or route.provider == result.route.provider
    assert {c.reason for c in result.candidates} <= set(CANDIDATE_REASONS)
    assert {s.reason for s in result.skipped} <= set(SKIP_REASONS)
    ranks = [ORDER[c.reason] for c in result.candidates]
    assert ranks == sorted(ranks)
    chain = [
        CHAIN.index(c.route.channel) for c in result.candidates if c.reason == "version_fallback"
    ]
    assert chain == sorted(set(chain))
    assert len(result.candidates) + len(result.skipped) >= 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(operations, max_size=6), policies, st.sampled_from((NOW, LATER)))
def test_plans_keep_their_invariants_after_any_operations(template, history, policy, now):
    directory = Path(tempfile.mkdtemp())
    try:
        shutil.copy(template, directory / "c.db")
        engine = make_engine(f"sqlite:///{directory / 'c.db'}")
        with make_session_factory(engine)() as session:
            for op in history:
                apply(session, op)
            serving = session.scalars(select(ModelRelease).where(ModelRelease.channel.is_not(None)))
            pairs = Counter((r.model_id, r.channel) for r in serving)
            assert all(n == 1 for n in pairs.values()), "one version per channel"
            catalogue = load_catalogue(session)
        engine.dispose()
        for model in catalogue.models.values():
            selectors = [v.channel for v in model.versions] + [r.version for r in model.releases]
            for selector in selectors:
                check_plan(catalogue, f"{model.name}:{selector}", policy, now)
    finally:
        shutil.rmtree(directory)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(operations, max_size=4), st.sampled_from(MODELS))
def test_rollback_undoes_a_promote_exactly(template, history, model):
    directory = Path(tempfile.mkdtemp())
    try:
        shutil.copy(template, directory / "c.db")
        engine = make_engine(f"sqlite:///{directory / 'c.db'}")
        with make_session_factory(engine)() as session:
            for op in history:
                apply(session, op)
            before = ops.model_state(session, ops.find_model(session, model))
            try:
                ops.promote(session, model, actor="prop", now=NOW)
            except RoutingError:
                return
            ops.rollback(session, model, actor="prop")
            assert ops.model_state(session, ops.find_model(session, model)) == before
        engine.dispose()
    finally:
        shutil.rmtree(directory)
