import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speech.mulaw import MU, mu_law_decode, mu_law_encode, mu_law_error_bound


def test_round_trip_within_quantisation_bound():
    x = torch.linspace(-1, 1, 200_001, dtype=torch.float64)
    err = (mu_law_decode(mu_law_encode(x), dtype=torch.float64) - x).abs()
    assert (err <= mu_law_error_bound(x) + 1e-12).all()
    # the bound is tight-ish: near zero a step is about 2 / (mu ln(1+mu)) ... wide near full scale
    assert err[100_000] < 1e-3 and err.max() > 0.01


@settings(max_examples=200, deadline=None)
@given(st.floats(-1, 1, allow_nan=False))
def test_round_trip_any_amplitude(v):
    x = torch.tensor([v], dtype=torch.float64)
    assert abs(float(mu_law_decode(mu_law_encode(x), dtype=torch.float64)[0]) - v) <= float(mu_law_error_bound(x)[0]) + 1e-12


def test_standard_formula_values():
    q = torch.arange(MU + 1)
    assert torch.equal(mu_law_encode(mu_law_decode(q, dtype=torch.float64)), q)  # decode lands inside its own bin
    x = torch.tensor([-1.0, 0.0, 1.0, 0.5, 2.0, -3.0])
    assert mu_law_encode(x).tolist()[:3] == [0, 128, 255]
    f = math.log1p(MU * 0.5) / math.log1p(MU)  # F(0.5)
    assert mu_law_encode(x)[3].item() == math.floor((f + 1) / 2 * MU + 0.5)
    assert mu_law_encode(x)[4:].tolist() == [255, 0]  # clipped
    assert mu_law_encode(x).dtype == torch.uint8  # one byte per sample: how corpora are held
    assert torch.allclose(mu_law_decode(torch.tensor([0, 255])), torch.tensor([-1.0, 1.0]))
