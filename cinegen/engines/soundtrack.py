"""The procedural soundtrack both engines use: ambience, sound effects, music and dialogue
from the prompt's audio cues.

Everything is synthesised whole with NumPy (noise shaped in the frequency domain, additive
tones, a formant voice), from a seeded generator, so the same request gives the same samples.
Output: float32 (samples, 2) at 48 kHz, peak-normalised below full scale. `for_spec` makes
a render's whole track; the diffusers engine falls back to it when it has no audio model.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave

import numpy as np

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.prompt import ScenePlan
from cinegen.media.clip import AUDIO_RATE
from cinegen.media.decode import MediaError, read_audio

RATE = AUDIO_RATE
MAX_NOISE_PERIOD = 1 << 19
DEFAULT_AMBIENCE = {
    "mountains": "wind",
    "forest": "birds",
    "ocean": "ocean",
    "city": "city",
    "desert": "wind",
    "space": "drone",
}


# --------------------------------------------------------------------------- building blocks


def shaped_noise(
    rng: np.random.Generator, n: int, low: float, high: float, tilt: float = 0.0
) -> np.ndarray:
    """White noise band-passed to [low, high] Hz with a spectral tilt (dB/octave-ish slope).

    Filtering in the frequency domain makes the noise periodic, so for long clips a
    power-of-two period (at most MAX_NOISE_PERIOD, ~11 s: too long to hear repeat) is made
    once and tiled seamlessly, instead of one huge, slow FFT.
    """
    period = min(MAX_NOISE_PERIOD, 1 << max(1, int(np.ceil(np.log2(max(n, 2))))))
    spectrum = np.fft.rfft(rng.standard_normal(period))
    freqs = np.fft.rfftfreq(period, 1.0 / RATE)
    band = 1.0 / (1.0 + (low / np.maximum(freqs, 1.0)) ** 4) / (1.0 + (freqs / high) ** 4)
    band *= (np.maximum(freqs, 20.0) / 1000.0) ** tilt
    out = np.fft.irfft(spectrum * band, period)
    out /= np.abs(out).max() + 1e-9
    return np.resize(out, n)


def smooth_envelope(rng: np.random.Generator, n: int, rate_hz: float, depth: float) -> np.ndarray:
    """A slow random gain curve around 1 (gusts, swells)."""
    knots = max(2, int(n / RATE * rate_hz) + 2)
    values = 1.0 + depth * (rng.random(knots) * 2 - 1)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)


def decay(n: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (seconds * RATE))


def place(track: np.ndarray, sound: np.ndarray, at: int, gain: float = 1.0) -> None:
    """Mix a mono sound into a mono track at sample `at` (clipped to the track)."""
    if at >= len(track) or at + len(sound) <= 0:
        return
    start = max(0, at)
    end = min(len(track), at + len(sound))
    track[start:end] += gain * sound[start - at : end - at]


@functools.lru_cache(maxsize=256)
def tone(freq: float, seconds: float, harmonics: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """A steady tone with harmonics (cached: music repeats its notes; callers only read it)."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for k, amp in enumerate(harmonics, start=1):
        out += amp * np.sin(2 * np.pi * freq * k * t)
    out.flags.writeable = False
    return out


# --------------------------------------------------------------------------- ambience


def ambience(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if name == "rain":
        hiss = shaped_noise(rng, n, 400, 9000, tilt=-0.3) * 0.5
        drops = np.zeros(n)
        for at in rng.integers(0, n, int(n / RATE * 40)):
            place(
                drops, rng.standard_normal(200) * decay(200, 0.001), int(at), rng.uniform(0.2, 0.6)
            )
        return hiss + drops
    if name == "wind":
        return shaped_noise(rng, n, 80, 900, tilt=-0.8) * smooth_envelope(rng, n, 0.6, 0.7)
    if name == "ocean":
        swell = 0.55 + 0.45 * np.sin(2 * np.pi * np.arange(n) / RATE / 7.0 + rng.uniform(0, 6))
        return shaped_noise(rng, n, 60, 3000, tilt=-0.6) * swell**2
    if name == "city":
        rumble = shaped_noise(rng, n, 30, 400, tilt=-1.0) * 0.8
        for at in rng.integers(0, n, max(1, int(n / RATE / 4))):
            place(rumble, tone(rng.choice([392.0, 440.0]), 0.4, (1, 0.5, 0.3)) * 0.25, int(at))
        return rumble
    if name == "birds":
        out = shaped_noise(rng, n, 200, 2000) * 0.05
        for at in rng.integers(0, n, int(n / RATE * 3) + 1):
            place(out, _chirp(rng), int(at), 0.5)
        return out
    if name == "fire":
        crackle = np.zeros(n)
        for at in rng.integers(0, n, int(n / RATE * 30)):
            place(
                crackle, rng.standard_normal(80) * decay(80, 0.0005), int(at), rng.uniform(0.3, 1)
            )
        return crackle + shaped_noise(rng, n, 50, 600, tilt=-1.0) * 0.4
    if name == "drone":
        t = np.arange(n) / RATE
        return (
            (np.sin(2 * np.pi * 55 * t) + 0.5 * np.sin(2 * np.pi * 82.5 * t))
            * 0.4
            * (smooth_envelope(rng, n, 0.3, 0.3))
        )
    return np.zeros(n)


def _chirp(rng: np.random.Generator) -> np.ndarray:
    """A bird call: a few fast downward frequency sweeps."""
    notes = []
    for _ in range(int(rng.integers(2, 5))):
        length = int(RATE * rng.uniform(0.05, 0.12))
        f = np.linspace(rng.uniform(3000, 4500), rng.uniform(1800, 2800), length)
        phase = 2 * np.pi * np.cumsum(f) / RATE
        notes.append(np.sin(phase) * np.hanning(length))
        notes.append(np.zeros(int(RATE * 0.04)))
    return np.concatenate(notes)


# --------------------------------------------------------------------------- sound effects


def effect(name: str, rng: np.random.Generator) -> np.ndarray:
    """One occurrence of a named sound effect (mono)."""
    if name == "thunder":
        n = int(RATE * 3.0)
        return shaped_noise(rng, n, 20, 300, tilt=-1.2) * decay(n, 0.9) * 1.5
    if name == "explosion":
        n = int(RATE * 2.0)
        boom = np.sin(2 * np.pi * np.cumsum(np.linspace(90, 30, n)) / RATE) * decay(n, 0.4)
        return shaped_noise(rng, n, 30, 4000, tilt=-0.8) * decay(n, 0.3) + boom
    if name == "footsteps":
        step = shaped_noise(rng, int(RATE * 0.08), 60, 1500) * decay(int(RATE * 0.08), 0.015)
        out = np.zeros(int(RATE * 2.0))
        for k in range(4):
            place(out, step, int(k * 0.5 * RATE), 0.8)
        return out
    if name == "door":
        knock = tone(180, 0.08, (1, 0.4)) * decay(int(RATE * 0.08), 0.012)
        out = np.zeros(int(RATE * 1.0))
        for k in range(3):
            place(out, knock, int(k * 0.22 * RATE))
        return out
    if name == "bell":
        n = int(RATE * 2.5)
        t = np.arange(n) / RATE
        partials = ((1.0, 1.0), (2.0, 0.6), (2.76, 0.4), (5.4, 0.25))
        return sum(a * np.sin(2 * np.pi * 660 * r * t) for r, a in partials) * decay(n, 0.7) * 0.5
    if name == "horn":
        return (
            np.concatenate([tone(415, 0.35, (1, 0.6, 0.4)), tone(330, 0.45, (1, 0.6, 0.4))]) * 0.4
        )
    if name == "whoosh":
        n = int(RATE * 0.8)
        return shaped_noise(rng, n, 300, 5000) * np.hanning(n)
    if name == "engine":
        n = int(RATE * 3.0)
        f = np.linspace(60, 140, n)
        return np.sign(np.sin(2 * np.pi * np.cumsum(f) / RATE)) * 0.25 * np.hanning(n)
    if name == "heartbeat":
        beat = tone(55, 0.12, (1, 0.3)) * decay(int(RATE * 0.12), 0.03)
        out = np.zeros(int(RATE * 0.9))
        place(out, beat, 0)
        place(out, beat, int(0.22 * RATE), 0.7)
        return out
    if name == "dog":
        n = int(RATE * 0.18)
        bark = tone(380, 0.18, (1, 0.8, 0.6, 0.4)) * np.hanning(n)
        return bark * (0.6 + 0.4 * shaped_noise(rng, n, 300, 3000))
    return np.zeros(1)


_SFX_REPEAT = {"footsteps": 2.0, "heartbeat": 0.9, "dog": 1.5, "engine": 3.0}


def effects(names: tuple[str, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Each named effect, repeated where it is a rhythm, otherwise a few times in the clip."""
    out = np.zeros(n)
    seconds = n / RATE
    for name in names:
        sound = effect(name, rng)
        period = _SFX_REPEAT.get(name)
        times = (
            np.arange(0.3, seconds, period)
            if period
            else np.sort(rng.uniform(0.3, max(0.4, seconds - 1.0), max(1, int(seconds // 3))))
        )
        for at in times:
            place(out, sound, int(at * RATE))
    return out


# --------------------------------------------------------------------------- music

_PROGRESSIONS = {  # semitone roots over A3, with chord quality
    "happy": ((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")),
    "calm": ((0, "maj7"), (5, "maj7"), (2, "min7"), (7, "maj")),
    "sad": ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
    "tense": ((0, "min"), (1, "maj"), (0, "min"), (6, "dim")),
    "epic": ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
}
_CHORDS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
}
_BPM = {"slow": 68, "medium": 96, "fast": 132}


def music(mood: str, tempo: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A pad plus a plucked arpeggio (and a kick when fast), one chord per bar."""
    bpm = _BPM.get(tempo, 96)
    beat = 60.0 / bpm
    base = 220.0 * 2 ** (int(rng.integers(-3, 3)) / 12)
    out = np.zeros(n)
    bar = int(4 * beat * RATE)
    progression = _PROGRESSIONS.get(mood, _PROGRESSIONS["calm"])
    for bar_index, start in enumerate(range(0, n, bar)):
        root, quality = progression[bar_index % len(progression)]
        notes = [base * 2 ** ((root + step) / 12) for step in _CHORDS[quality]]
        pad = sum(tone(f * 0.5, 4 * beat, (1, 0.3, 0.1)) for f in notes) / len(notes)
        assert isinstance(pad, np.ndarray)  # a sum of tones: every chord has notes
        pad *= np.minimum(1, np.minimum(np.arange(len(pad)), np.arange(len(pad))[::-1]) / 2000)
        place(out, pad * 0.35, start)
        for k in range(8):
            f = notes[k % len(notes)] * (2 if k % 4 == 3 else 1)
            pluck = tone(f, beat, (1, 0.4, 0.2)) * decay(int(beat * RATE), beat * 0.35)
            place(out, pluck * 0.3, start + int(k * beat / 2 * RATE))
        if tempo == "fast" or mood == "epic":
            kick_n = int(0.25 * RATE)
            kick = np.sin(2 * np.pi * np.cumsum(np.linspace(120, 45, kick_n)) / RATE)
            for k in range(4):
                place(out, kick * decay(kick_n, 0.08) * 0.6, start + int(k * beat * RATE))
    return out


# --------------------------------------------------------------------------- dialogue

_VOWELS = {  # F1, F2, F3 (Hz) of a neutral adult voice
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
    "y": (270, 2290, 3010),
}


def _formant_filter(source: np.ndarray, formants: tuple[int, int, int]) -> np.ndarray:
    """Shape a source by three resonances (frequency domain: exact and fast)."""
    spectrum = np.fft.rfft(source)
    freqs = np.fft.rfftfreq(len(source), 1.0 / RATE)
    response = np.zeros_like(freqs)
    for f, gain in zip(formants, (1.0, 0.7, 0.35), strict=True):
        bandwidth = 60 + f * 0.08
        response += gain / (1 + ((freqs - f) / bandwidth) ** 2)
    return np.fft.irfft(spectrum * response, len(source))


def speak(text: str, rng: np.random.Generator, pitch: float = 125.0) -> np.ndarray:
    """Speech-like audio for a line: vowels voiced through formants, consonants as noise.

    Not words, but the rhythm, pitch contour and timbre of a voice saying the line.
    """
    pieces = []
    letters = [c for c in text.lower() if c.isalpha() or c in " ,.!?"]
    count = max(1, len(letters))
    for index, char in enumerate(letters):
        contour = pitch * (1.15 - 0.3 * index / count) * (1 + 0.05 * np.sin(index * 1.3))
        if char in _VOWELS:
            n = int(RATE * 0.11)
            t = np.arange(n) / RATE
            glottal = np.sign(np.sin(2 * np.pi * contour * t)) * 0.5 + rng.standard_normal(n) * 0.03
            voiced = _formant_filter(glottal, _VOWELS[char]) * np.hanning(n)
            pieces.append(voiced / (np.abs(voiced).max() + 1e-9))
        elif char.isalpha():
            n = int(RATE * 0.05)
            low = 3000 if char in "szfxc" else 1500
            pieces.append(shaped_noise(rng, n, low, 8000) * np.hanning(n) * 0.3)
        elif char in ",.!?":
            pieces.append(np.zeros(int(RATE * 0.18)))
        else:
            pieces.append(np.zeros(int(RATE * 0.05)))
    return np.concatenate(pieces) if pieces else np.zeros(1)


def espeak(text: str, voice: str = "en") -> np.ndarray | None:
    """The line spoken by espeak-ng at 48 kHz, or None when espeak-ng is not installed.

    espeak-ng is deterministic (same text, same samples), so the seed guarantee holds.
    """
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    try:
        result = subprocess.run(
            [binary, "--stdout", "-v", voice, "-s", "155", "--", text],
            capture_output=True,
            timeout=30,
            check=True,
        )
        with wave.open(io.BytesIO(result.stdout)) as wav:
            rate = wav.getframerate()
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
        return None
    if width != 2 or not raw:
        return None
    samples = np.frombuffer(raw, "<i2").astype(np.float64).reshape(-1, channels)[:, 0] / 32768
    positions = np.arange(int(len(samples) * RATE / rate)) * (rate / RATE)
    return np.interp(positions, np.arange(len(samples)), samples)


def dialogue(lines: tuple[str, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Each quoted line in turn (alternating two voices): espeak-ng, else the formant voice."""
    out = np.zeros(n)
    at = int(0.4 * RATE)
    for index, line in enumerate(lines):
        voice = espeak(line, "en" if index % 2 == 0 else "en+f3")
        if voice is None:
            voice = speak(line, rng, pitch=125.0 if index % 2 == 0 else 200.0)
        place(out, voice, at)
        at += len(voice) + int(0.4 * RATE)
    return out


# --------------------------------------------------------------------------- the mix


def soundtrack(plan: ScenePlan, seconds: float, seed: int) -> np.ndarray:
    """The full mix as float32 (samples, 2) for `seconds` of video."""
    n = max(1, int(round(seconds * RATE)))
    rng = np.random.default_rng([seed, 11])
    beds = list(plan.ambience)
    if not beds and not plan.music and not plan.sfx and not plan.dialogue:
        beds = [DEFAULT_AMBIENCE.get(plan.setting, "wind")]
    left = np.zeros(n)
    right = np.zeros(n)
    for index, name in enumerate(beds):
        mono_l = ambience(name, n, np.random.default_rng([seed, 12, index]))
        mono_r = ambience(name, n, np.random.default_rng([seed, 13, index]))
        left += 0.35 * (0.8 * mono_l + 0.2 * mono_r)
        right += 0.35 * (0.2 * mono_l + 0.8 * mono_r)
    if plan.sfx:
        fx = effects(plan.sfx, n, rng) * 0.5
        left += fx
        right += fx * 0.8
    if plan.music:
        tune = music(plan.music_mood, plan.tempo, n, rng) * 0.45
        left += tune
        right += tune
    if plan.dialogue:
        voice = dialogue(plan.dialogue, n, rng) * 0.6
        left += voice
        right += voice
    mix = np.stack([left, right], axis=1)
    peak = np.abs(mix).max()
    if peak > 0:
        mix *= 0.8 / peak
    fade = min(n // 2, int(0.02 * RATE))
    if fade:
        ramp = np.linspace(0, 1, fade)[:, None]
        mix[:fade] *= ramp
        mix[-fade:] *= ramp[::-1]
    return mix.astype(np.float32)


def continue_audio(previous: np.ndarray, seconds: float, plan: ScenePlan, seed: int) -> np.ndarray:
    """`previous` followed by `seconds` more: its own texture looped, blended into the prompt's.

    The last second of the input is repeated with overlapping crossfades (a granular
    continuation), so the sound does not jump at the seam, and the prompt's soundtrack
    fades in under it. The two are unrelated sounds, so their mix is made as loud as the
    input's last second (root mean square) rather than summed: summed, each extension came
    out at two thirds of its input's loudness, and a fifth extension was nearly silent.
    """
    n = int(round(seconds * RATE))
    fresh = soundtrack(plan, seconds, seed)
    if len(previous) < RATE // 10 or np.abs(previous[-RATE // 10 :]).max() < 1e-4:
        return np.concatenate([previous, fresh]).astype(np.float32)
    grain = min(len(previous), RATE)
    source = previous[-grain:]
    hop = grain // 2
    loop = np.zeros((n + 2 * grain, 2))
    window = np.hanning(grain)[:, None]
    for start in range(0, n + grain, hop):  # overlap-add; skip the first half-grain ramp
        loop[start : start + grain] += source * window
    loop = loop[hop : hop + n]
    level = _loudness(source)
    fade = np.clip(np.arange(n) / (RATE * 3.0), 0, 1)[:, None]
    own, prompt = 1 - 0.6 * fade, 0.6 * fade
    tail = loop * (level / _loudness(loop)) * own + fresh * (level / _loudness(fresh)) * prompt
    tail /= np.sqrt(own**2 + prompt**2)
    return np.concatenate([previous, np.clip(tail, -1.0, 1.0)]).astype(np.float32)


def _loudness(track: np.ndarray) -> float:
    """Root mean square of a (samples, 2) track (never zero, so it can divide)."""
    return float(np.sqrt(np.mean(np.square(track)))) + 1e-6


# --------------------------------------------------------------------------- for a render


def for_spec(spec: RenderSpec, plan: ScenePlan) -> np.ndarray:
    """The soundtrack, exactly as long as the video; an extension continues the input's."""
    seconds = spec.num_frames / spec.fps
    total = int(round(seconds * AUDIO_RATE))
    if spec.mode is Mode.EXTENSION and spec.input_video is not None:
        previous = input_audio(spec)
        new_seconds = max(0.0, (total - len(previous)) / AUDIO_RATE)
        return fit_length(continue_audio(previous, new_seconds, plan, spec.seed), total)
    return fit_length(soundtrack(plan, seconds, spec.seed), total)


def input_audio(spec: RenderSpec) -> np.ndarray:
    """The extension input's own soundtrack (silence where it has none), at 48 kHz stereo,
    exactly as long as the input video."""
    video = spec.input_video
    assert video is not None
    samples = int(round(video.num_frames / video.fps * AUDIO_RATE))
    previous = None
    if video.has_audio:
        try:
            previous = read_audio(video.path, AUDIO_RATE)
        except MediaError:
            previous = None
    return fit_length(previous if previous is not None else np.zeros((0, 2)), samples)


def fit_length(track: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad a (samples, 2) track to exactly `samples`, as float32."""
    track = np.asarray(track, np.float32)
    if len(track) >= samples:
        return np.ascontiguousarray(track[:samples])
    return np.concatenate([track, np.zeros((samples - len(track), 2), np.float32)])
