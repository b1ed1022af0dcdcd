from referral.cases.process import State

from . import factories


def test_every_state_can_be_built(world):
    for state in State:
        referral = factories.referral_in(state, world.teacher, world.asd)
        assert referral.state is state
