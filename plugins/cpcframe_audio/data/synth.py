"""A tiny source-filter speech synthesiser for the built-in synthetic corpus.

Speech-like on purpose, so that what CPC must learn on LibriSpeech is present in
small form: phones are formant patterns (vowels, nasals) or noise bands (fricatives,
a stop burst) lasting several 10 ms frames; speakers differ in pitch (F0), vocal-tract
length (all formants scaled by ``alpha``), spectral tilt, breathiness and a channel
colouring; words come from a small lexicon, so the phone sequence is predictable.
Nuisance variation keeps the tasks from being trivial: formants overlap across
speakers, pitch and speaking rate vary per utterance, transitions between phones are
smoothed (co-articulation), and there is a noise floor.

Synthesis is spectral: an excitation (a glottal pulse train at F0 plus white noise)
is filtered frame by frame in the STFT domain (hop 5 ms) by the envelope of the phone
being spoken, then overlap-added back. Frame labels are exact: phone boundaries fall
on 10 ms frames (160 samples at 16 kHz).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from cpcframe_audio.data.labels import LABEL_HOP

SAMPLE_RATE = 16000
FRAME = LABEL_HOP  # samples per label frame (10 ms)
HOP = 80  # STFT hop of the synthesiser (5 ms)
N_FFT = 512

# name, kind, (F1, F2, F3) of an adult male (Peterson & Barney 1952 style), voicing, noise band.
_PHONES = [
    ("sil", "silence", (500, 1500, 2500), 0.0, None, 0.0),
    ("iy", "vowel", (270, 2290, 3010), 1.0, None, 0.0),
    ("ih", "vowel", (390, 1990, 2550), 1.0, None, 0.0),
    ("eh", "vowel", (530, 1840, 2480), 1.0, None, 0.0),
    ("ae", "vowel", (660, 1720, 2410), 1.0, None, 0.0),
    ("aa", "vowel", (730, 1090, 2440), 1.0, None, 0.0),
    ("ao", "vowel", (570, 840, 2410), 1.0, None, 0.0),
    ("uw", "vowel", (300, 870, 2240), 1.0, None, 0.0),
    ("ah", "vowel", (520, 1190, 2390), 1.0, None, 0.0),
    ("m", "nasal", (250, 1000, 2200), 0.35, None, 0.0),
    ("n", "nasal", (250, 1700, 2500), 0.35, None, 0.0),
    ("s", "fricative", (500, 1500, 2500), 0.0, (4500, 7500), 0.30),
    ("sh", "fricative", (500, 1500, 2500), 0.0, (2000, 4500), 0.35),
    ("f", "fricative", (500, 1500, 2500), 0.0, (1200, 7200), 0.10),
    ("z", "fricative", (250, 1500, 2500), 0.25, (4500, 7500), 0.20),
    ("t", "stop", (500, 1500, 2500), 0.0, (2500, 7000), 0.45),
]
PHONE_NAMES: tuple[str, ...] = tuple(p[0] for p in _PHONES)
NUM_PHONES = len(_PHONES)
_VOWELS = [i for i, p in enumerate(_PHONES) if p[1] == "vowel"]
_ONSETS = [PHONE_NAMES.index(n) for n in ("m", "n", "s", "sh", "f", "z", "t")]
_CODAS = [PHONE_NAMES.index(n) for n in ("m", "n", "s", "t")]
_FORMANTS = np.array([p[2] for p in _PHONES], dtype=np.float64)  # (P, 3)
_VOICING = np.array([p[3] for p in _PHONES])
_NOISE_GAIN = np.array([p[5] for p in _PHONES])
_NOISE_BAND = np.array([p[4] or (0.0, 0.0) for p in _PHONES], dtype=np.float64)  # (P, 2)
_IS_VOWEL_LIKE = np.array([p[1] in ("vowel", "nasal") for p in _PHONES])
SIL, STOP = PHONE_NAMES.index("sil"), PHONE_NAMES.index("t")


@attrs.frozen
class Speaker:
    """Voice parameters of one synthetic speaker."""

    f0: float  # mean pitch, Hz
    alpha: float  # vocal-tract scale: formants and noise bands are multiplied by it
    tilt: float  # source spectral slope exponent (1 = -6 dB/octave)
    breathiness: float  # aspiration noise relative to voicing
    accent: np.ndarray  # (P, 3) per-phone formant factors
    channel: np.ndarray  # (N_FFT//2+1,) linear gain of the speaker's recording channel
    rate: float  # speaking-rate factor (durations are divided by it)


def make_speaker(rng: np.random.Generator) -> Speaker:
    female = rng.random() < 0.5
    f0 = float(np.exp(rng.uniform(np.log(165), np.log(255)) if female
                      else rng.uniform(np.log(85), np.log(150))))
    alpha = float(rng.uniform(1.02, 1.2) if female else rng.uniform(0.85, 1.03))
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    logf = np.log2(np.maximum(freqs, 50.0) / 50.0)
    db = sum(rng.uniform(-2.5, 2.5) * np.cos(logf * rng.uniform(0.4, 1.6) + rng.uniform(0, 2 * np.pi))
             for _ in range(3))
    return Speaker(f0=f0, alpha=alpha, tilt=float(rng.uniform(0.3, 0.8)),
                   breathiness=float(rng.uniform(0.02, 0.15)),
                   accent=np.exp(rng.normal(0, 0.04, size=(NUM_PHONES, 3))),
                   channel=10 ** (db / 20), rate=float(rng.uniform(0.85, 1.15)))


def make_lexicon(rng: np.random.Generator, size: int) -> list[list[int]]:
    """``size`` words of 1-3 (C)V(C) syllables, as phone index lists."""
    words = []
    for _ in range(size):
        word: list[int] = []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.8:
                word.append(int(rng.choice(_ONSETS)))
            word.append(int(rng.choice(_VOWELS)))
            if rng.random() < 0.3:
                word.append(int(rng.choice(_CODAS)))
        words.append(word)
    return words


def _duration(rng: np.random.Generator, phone: int, rate: float) -> int:
    lo, hi = {"vowel": (7, 16), "nasal": (5, 9), "fricative": (7, 12), "stop": (5, 7),
              "silence": (4, 10)}[_PHONES[phone][1]]
    return max(2, int(round(rng.integers(lo, hi + 1) / rate)))


def phone_sequence(rng: np.random.Generator, lexicon: list[list[int]], zipf: np.ndarray,
                   frames: int, rate: float) -> np.ndarray:
    """``(frames,)`` phone label per 10 ms frame: silence, words (Zipf-distributed), pauses, silence."""
    out = [SIL] * int(rng.integers(10, 25))
    while len(out) < frames - 12:
        for phone in lexicon[int(rng.choice(len(lexicon), p=zipf))]:
            out += [phone] * _duration(rng, phone, rate)
        if rng.random() < 0.3:
            out += [SIL] * _duration(rng, SIL, rate)
    out = out[:frames - 12]
    out += [SIL] * (frames - len(out))
    return np.asarray(out, dtype=np.int64)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 (edges repeated), for co-articulated transitions."""
    if width <= 1:
        return x
    pad = width // 2
    padded = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], width - 1 - pad, 0)])
    kernel = np.ones(width) / width
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, padded)


def synthesize(rng: np.random.Generator, speaker: Speaker, labels: np.ndarray) -> np.ndarray:
    """Waveform ``(len(labels) * 160,)`` float32 of ``speaker`` saying the frame ``labels``."""
    frames = len(labels)
    n = frames * FRAME
    steps = n // HOP + 1  # STFT frames (center=True)
    # Phone parameters at the synthesiser's 5 ms rate.
    ph = np.repeat(labels, FRAME // HOP)
    ph = np.concatenate([ph, ph[-1:].repeat(steps - len(ph))])[:steps]
    alpha = speaker.alpha * np.exp(rng.normal(0, 0.01))
    formants = _FORMANTS[ph] * speaker.accent[ph] * alpha  # (steps, 3)
    # Unvoiced phones take the formants of the nearest earlier vowel-like phone, so that
    # formant tracks glide only between the sounds that show them.
    voiced_idx = np.where(_IS_VOWEL_LIKE[ph], np.arange(steps), 0)
    np.maximum.accumulate(voiced_idx, out=voiced_idx)
    formants = _smooth(formants[voiced_idx], 7)  # ~35 ms transitions
    voicing = _smooth(_VOICING[ph][:, None], 3)[:, 0]
    noise = _smooth(_NOISE_GAIN[ph][:, None], 2)[:, 0]
    band = _NOISE_BAND[ph] * alpha
    # A stop is a closure, then a burst in its last 2 frames.
    is_stop = ph == STOP
    run_end = np.r_[ph[1:] != ph[:-1], True]
    ends = np.where(run_end & is_stop)[0]
    burst = np.zeros(steps, bool)
    for e in ends:
        burst[max(0, e - 3):e + 1] = True
    noise = np.where(is_stop & ~burst, 0.0, noise)

    # Pitch: speaker mean, per-utterance shift, declination and slow wander.
    t = np.linspace(0, 1, steps)
    wander = _smooth(rng.normal(0, 0.04, size=(steps, 1)), 41)[:, 0] * 6
    f0 = speaker.f0 * np.exp(rng.normal(0, 0.06)) * (1.08 - 0.16 * t) * np.exp(wander)
    f0_samples = np.interp(np.arange(n), np.arange(steps) * HOP, f0)
    phase = np.cumsum(f0_samples) / SAMPLE_RATE + rng.random()
    pulses = np.zeros(n)
    pulses[np.nonzero(np.diff(np.floor(phase), prepend=np.floor(phase[0])))[0]] = 1.0
    pulses *= np.sqrt(f0_samples / 100.0)  # equal loudness across pitches
    white = rng.normal(0, 1, n) * 0.05

    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)  # (F,)
    bandwidths = np.array([60.0, 90.0, 150.0]) * (1 + 0.5 * (~_IS_VOWEL_LIKE[ph] | (ph >= 9)))[:, None]
    f2 = freqs[None, None, :] ** 2
    fm = formants[:, :, None]
    # Cascade formant resonators: prod_i F_i^2 / |F_i^2 - f^2 + j B_i f| (unity gain at 0 Hz).
    resonance = np.prod(fm ** 2 / np.sqrt((fm ** 2 - f2) ** 2 + (bandwidths[:, :, None] * freqs) ** 2), 1)
    tilt = (1 + (freqs / 150.0) ** 2) ** (-speaker.tilt / 2)  # glottal source + radiation
    env_voiced = resonance * tilt[None] * voicing[:, None]
    lo, hi = band[:, :1], band[:, 1:]
    edge = 300.0
    band_shape = 1 / (1 + np.exp(-(freqs - lo) / edge)) / (1 + np.exp((freqs - hi) / edge))
    env_noise = band_shape * noise[:, None] * 2 + speaker.breathiness * env_voiced * 0.5
    env_noise = np.where(band[:, :1] > 0, env_noise, speaker.breathiness * env_voiced * 0.5)

    window = torch.hann_window(N_FFT, dtype=torch.float64)
    spec_v = torch.stft(torch.from_numpy(pulses), N_FFT, HOP, window=window, return_complex=True)
    spec_n = torch.stft(torch.from_numpy(white), N_FFT, HOP, window=window, return_complex=True)
    channel = torch.from_numpy(speaker.channel)[:, None]
    spec = (spec_v * torch.from_numpy(env_voiced.T) + spec_n * torch.from_numpy(env_noise.T)) * channel
    wave = torch.istft(spec, N_FFT, HOP, window=window, length=n).numpy()
    wave = wave / (np.abs(wave).max() + 1e-9)
    floor = rng.normal(0, 1, n) * 10 ** (rng.uniform(-55, -42) / 20)
    gain = 10 ** (rng.uniform(-9, -2) / 20)
    return ((wave + floor) * gain).astype(np.float32)
