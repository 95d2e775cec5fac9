"""`synthetic-speech`: seeded source-filter synthesis of vowel-like speech (no download, runs anywhere).

Each synthetic speaker has a pitch range and a vocal-tract scale. A syllable is a glottal pulse train with a
pitch contour (the source) through a cascade of formant resonators (the filter, Klatt-style two-pole
sections), under an attack/decay envelope, sometimes after a noise burst (a plosive onset). An utterance
opens with a short "theme" of syllables, then filler syllables, then repeats the theme (bit-identical
waveform) after a gap of `recur_gap_s` seconds: long memory has something to find (the paper's motivation,
Section 1), while local structure (pitch periods, formants) rewards a short receptive field.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (F1, F2, F3) in Hz of a few vowels (Peterson & Barney averages, adult male).
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
                   [660, 1720, 2410], [570, 840, 2410], [440, 1020, 2240], [490, 1350, 1690]], dtype=np.float64)
BANDWIDTHS = np.array([60.0, 90.0, 150.0])


@dataclass(frozen=True)
class Speaker:
    f0: float        # mean pitch, Hz
    tract: float     # formant scale (shorter tract -> higher formants)


@dataclass(frozen=True)
class Syllable:
    vowel: int
    f0_start: float  # relative pitch at onset (x speaker f0)
    f0_end: float
    duration_s: float
    plosive: bool


def resonator(x: np.ndarray, freq: float, bandwidth: float, rate: int) -> np.ndarray:
    """Two-pole resonance at `freq` with `bandwidth` (Hz), unit gain at DC. x: [N] -> [N]."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / rate)
    a = [1.0, -2 * r * np.cos(2 * np.pi * freq / rate), r * r]
    return lfilter([sum(a)], a, x)


def glottal_source(f0: np.ndarray, rate: int) -> np.ndarray:
    """Pulse train whose period follows f0: [N] Hz, smoothed into a glottal-flow-derivative-like shape."""
    from scipy.signal import lfilter

    phase = np.cumsum(f0 / rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)  # 1 where a new glottal period starts
    return lfilter([1.0, -1.0], [1.0, -0.97], lfilter([1.0], [1.0, -0.9], pulses))


def render_syllable(s: Syllable, speaker: Speaker, rate: int, rng: np.random.Generator | None) -> np.ndarray:
    """One syllable's waveform: [round(duration * rate)] float64. `rng` only for the plosive burst."""
    n = max(int(round(s.duration_s * rate)), 16)
    f0 = speaker.f0 * np.linspace(s.f0_start, s.f0_end, n)
    x = glottal_source(f0, rate)
    for freq, bw in zip(VOWELS[s.vowel] * speaker.tract, BANDWIDTHS):
        x = resonator(x, min(freq, 0.45 * rate), bw, rate)
    attack, decay = int(0.015 * rate), int(0.04 * rate)
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack)
    env[-decay:] = np.linspace(1, 0, decay)
    x = x * env
    if s.plosive and rng is not None:
        burst = int(0.012 * rate)
        x[:burst] += rng.standard_normal(burst) * np.linspace(1, 0, burst) * 0.3 * np.abs(x).max()
    return x


def random_syllable(rng: np.random.Generator) -> Syllable:
    return Syllable(vowel=int(rng.integers(len(VOWELS))), f0_start=float(rng.uniform(0.85, 1.2)),
                    f0_end=float(rng.uniform(0.8, 1.15)), duration_s=float(rng.uniform(0.09, 0.22)),
                    plosive=bool(rng.random() < 0.4))


def make_speakers(n: int, seed: int) -> list[Speaker]:
    rng = np.random.default_rng([seed, 1])
    return [Speaker(f0=float(rng.uniform(90, 230)), tract=float(rng.uniform(0.85, 1.2))) for _ in range(n)]


def synth_utterance(speaker: Speaker, seconds: float, rate: int, seed: int, theme_len: int = 3,
                    recur_gap_s: float = 1.0) -> np.ndarray:
    """One utterance: theme, fillers for ~recur_gap_s, theme again, fillers to `seconds`. -> [N] float32."""
    rng = np.random.default_rng(seed)
    theme = [render_syllable(random_syllable(rng), speaker, rate, rng) for _ in range(theme_len)]
    pieces, total = list(theme), sum(len(t) for t in theme)

    def fill(until: int) -> None:
        nonlocal total
        while total < until:
            gap = np.zeros(int(rng.uniform(0.02, 0.08) * rate))
            syl = render_syllable(random_syllable(rng), speaker, rate, rng)
            pieces.extend([gap, syl])
            total += len(gap) + len(syl)

    fill(total + int(recur_gap_s * rate))
    pieces.extend(theme)
    total += sum(len(t) for t in theme)
    fill(int(seconds * rate))
    x = np.concatenate(pieces)
    x = x / (np.abs(x).max() + 1e-9) * 0.6
    x = x + rng.standard_normal(len(x)) * 1e-3  # a little noise floor so silence is not a single class
    return x.astype(np.float32)


def synthetic_corpus(n_files: int, seconds: float, n_speakers: int, rate: int, seed: int,
                     recur_gap_s: float = 1.0) -> list[tuple[str, str, np.ndarray]]:
    """[(name, speaker, audio [N] float32)] for n_files utterances; speakers cycle over files."""
    speakers = make_speakers(n_speakers, seed)
    out = []
    for i in range(n_files):
        k = i % n_speakers
        x = synth_utterance(speakers[k], seconds, rate, seed=seed * 1_000_003 + i,
                            recur_gap_s=recur_gap_s)
        out.append((f"synth_{i:05d}", f"spk{k}", x))
    return out
