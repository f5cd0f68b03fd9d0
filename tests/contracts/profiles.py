"""Hypothesis profiles of the contracts' state machines: a short one for every run, a long one
under the ``slow`` marker.

The short profile does not shrink: an example costs a deployment and dozens of transactions,
and shrinking one takes minutes, so a failure shows its steps as found. The long profile
shrinks unless told not to.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

__all__ = ["register", "run"]

NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]


def register(
    name: str, *, short: tuple[int, int], long: tuple[int, int], shrink_long: bool = True
) -> None:
    """Profiles ``<name>-short`` and ``<name>-long``, each ``(examples, steps per example)``."""
    common = {"deadline": None, "suppress_health_check": list(HealthCheck)}
    settings.register_profile(
        f"{name}-short",
        max_examples=short[0],
        stateful_step_count=short[1],
        phases=NO_SHRINK,
        **common,
    )
    long_phases = {} if shrink_long else {"phases": NO_SHRINK}
    settings.register_profile(
        f"{name}-long",
        max_examples=long[0],
        stateful_step_count=long[1],
        **long_phases,
        **common,
    )


def run(machine: type[RuleBasedStateMachine], profile: str, **attributes: object) -> None:
    """Run ``machine`` under the profile ``profile``, with ``attributes`` (the chain, the
    accounts) as class attributes of a subclass made for this run."""
    bound = type("Machine", (machine,), attributes)
    run_state_machine_as_test(bound, settings=settings.get_profile(profile))
