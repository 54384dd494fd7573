"""The load profile's stages, weights and options, without a server."""

from __future__ import annotations

import pytest

from load.profile import DEFAULT_STAGES, REQUESTS_PER_TASK, SMOKE_STAGES, mix_weights, parse_stages
from load.run import LoadRunError, run_locust
from stack_config.schema import TrafficMix


def test_stages_ramp_linearly_and_end() -> None:
    stages = parse_stages("10:10,20s:30,10:0")
    assert stages.seconds == 40
    assert stages.users_at(0) == (0, 2.0)
    assert stages.users_at(5)[0] == 5
    assert stages.users_at(20)[0] == 20  # halfway from 10 to 30
    assert stages.users_at(35)[0] == 15  # halfway down to 0
    assert stages.users_at(40) is None


def test_the_default_and_smoke_stages_parse() -> None:
    assert parse_stages(DEFAULT_STAGES).seconds >= 300  # long enough for target tracking to act
    assert 10 <= parse_stages(SMOKE_STAGES).seconds <= 20


@pytest.mark.parametrize("spec", ["", "10", "10:x", "-5:3", "0:3", "5:-1", "nan:3"])
def test_bad_stages_name_the_bad_part(spec: str) -> None:
    with pytest.raises(ValueError, match="SECONDS:USERS"):
        parse_stages(spec)


def test_weights_make_requests_follow_the_mix() -> None:
    weights = mix_weights(TrafficMix(browse=80, session=15, checkout=5))
    requests = {name: weights[name] * REQUESTS_PER_TASK[name] for name in weights}
    total = sum(requests.values())
    assert requests["browse"] / total == pytest.approx(0.80, abs=0.01)
    assert requests["session"] / total == pytest.approx(0.15, abs=0.01)
    assert requests["checkout"] / total == pytest.approx(0.05, abs=0.01)


def test_locust_refuses_bad_stages_without_a_traceback() -> None:
    with pytest.raises(LoadRunError) as error:
        run_locust("http://127.0.0.1:9", stages="ten:5", timeout=60)
    assert "'ten:5' is not SECONDS:USERS" in str(error.value)
    assert "Traceback" not in str(error.value)
