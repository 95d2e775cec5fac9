"""RLConfig validation: settings that could never make an update are refused when the config is built."""
import pytest

from rl.config import load


def test_fewer_buffers_than_a_batch_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"impala\.num_buffers=3 is less than impala\.batch_size=4"):
        load("smoke", ["impala.num_buffers=3"])
    assert load("smoke", ["impala.num_buffers=4"]).impala.buffers == 4  # exactly one batch is enough
    assert load("smoke").impala.buffers == 6  # 0: max(2 * num_actors, batch_size + num_actors)


def test_dmlab_preset_is_the_papers_setting_with_impalas_optimiser():
    """configs/rl/dmlab.toml against the values stated independently here: the paper's (Section 5.7) fixed
    lr 1.5e-5 and entropy cost 2e-3 with memory 64 / compressed 64 / c = 4; IMPALA's (monobeast's)
    RMSProp alpha 0.99, momentum 0, eps 0.01 and clip 40, which mean IMPALA's only with summed losses."""
    c = load("dmlab")
    i, a = c.impala, c.agent
    assert (i.optimizer, i.lr, i.lr_anneal, i.entropy_cost) == ("rmsprop", 1.5e-5, False, 2e-3)
    assert (i.loss_reduction, i.grad_clip) == ("sum", 40.0)
    assert (i.rmsprop_eps, i.rmsprop_alpha, i.rmsprop_momentum) == (0.01, 0.99, 0.0)
    assert (i.baseline_cost, i.gamma, i.reward_clip, i.rho_bar, i.c_bar) == (0.5, 0.99, 1.0, 1.0, 1.0)
    assert (a.core, a.mem_len, a.cmem_len, a.compression_rate) == ("compressive", 64, 64, 4)


def test_loss_reduction_is_checked():
    with pytest.raises(ValueError, match=r"impala\.loss_reduction: must be 'mean' or 'sum', got 'max'"):
        load("smoke", ["impala.loss_reduction=max"])
