"""RLConfig validation: settings that could never make an update are refused when the config is built."""
import pytest

from rl.config import load


def test_fewer_buffers_than_a_batch_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"impala\.num_buffers=3 is less than impala\.batch_size=4"):
        load("smoke", ["impala.num_buffers=3"])
    assert load("smoke", ["impala.num_buffers=4"]).impala.buffers == 4  # exactly one batch is enough
    assert load("smoke").impala.buffers == 6  # 0: max(2 * num_actors, batch_size + num_actors)
