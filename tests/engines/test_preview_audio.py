"""The soundtrack follows the prompt's audio cues (measured on the Clip's PCM)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.engines.prompt import parse_prompt
from cinegen.engines.soundtrack import soundtrack, speak
from cinegen.media.clip import AUDIO_RATE
from cinegen.media.decode import probe_video, read_audio
from tests.support.preview import render_to, spec_for

ENGINE = PreviewEngine()


def audio_for(prompt: str, negative: str = "", seconds: int = 4) -> np.ndarray:
    spec = replace(
        spec_for(num_frames=24 * seconds, audio=True), prompt=prompt, negative_prompt=negative
    )
    clip = ENGINE.render(spec, lambda _: None)
    audio = clip.soundtrack()
    assert audio is not None
    return audio


def band_share(mono: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / AUDIO_RATE)
    return float(power[(freqs >= low) & (freqs < high)].sum() / (power.sum() + 1e-12))


def flatness(mono: np.ndarray) -> float:
    """Spectral flatness (1 = white noise, ~0 = pure tones) over 100 Hz - 8 kHz."""
    power = np.abs(np.fft.rfft(mono)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(len(mono), 1 / AUDIO_RATE)
    band = power[(freqs > 100) & (freqs < 8000)]
    return float(np.exp(np.mean(np.log(band))) / np.mean(band))


def envelope(mono: np.ndarray, rate: int = 100) -> np.ndarray:
    hop = AUDIO_RATE // rate
    frames = np.abs(mono[: len(mono) // hop * hop]).reshape(-1, hop)
    return frames.mean(axis=1)


def test_every_clip_is_stereo_48k_full_length_and_audible() -> None:
    for prompt in ("a quiet valley", "rain on a tin roof", "ocean waves", "a city street"):
        audio = audio_for(prompt)
        assert audio.shape == (4 * AUDIO_RATE, 2) and audio.dtype == np.float32
        rms = np.sqrt(np.mean(audio**2, axis=0))
        assert (rms > 0.02).all(), prompt
        assert not np.array_equal(audio[:, 0], audio[:, 1])  # a stereo image, not mono twice


def test_rain_is_noise_and_music_is_tonal() -> None:
    rain = audio_for("heavy rain, no music")[:, 0]
    tune = audio_for("a calm piano melody plays", negative="rain")[:, 0]
    assert flatness(rain) > 5 * flatness(tune)
    assert band_share(rain, 2000, 12000) > band_share(tune, 2000, 12000)


def test_ambiences_differ_the_way_they_sound() -> None:
    wind = audio_for("strong wind on a mountain")[:, 0]
    birds = audio_for("birdsong in a forest")[:, 0]
    assert band_share(wind, 0, 900) > 0.7  # low, rumbling
    assert band_share(birds, 1800, 5000) > 0.3  # chirps up high


def beat_period(mono: np.ndarray) -> float:
    """Seconds between notes: the first strong peak of the loudness autocorrelation."""
    env = envelope(mono)
    env = env - env.mean()
    ac = np.correlate(env, env, mode="full")[len(env) - 1 :]
    for lag in range(10, 150):  # 0.1 s to 1.5 s
        if ac[lag] > ac[lag - 1] and ac[lag] >= ac[lag + 1] and ac[lag] > 0.2 * ac[0]:
            return lag / 100
    return float("inf")


def test_tempo_words_change_the_beat() -> None:
    fast = beat_period(audio_for("fast energetic dance music", seconds=6)[:, 0])
    slow = beat_period(audio_for("slow gentle lullaby music", seconds=6)[:, 0])
    assert fast < slow < 1.5
    assert fast < 0.35


def test_quoted_dialogue_is_speech_like() -> None:
    voice = speak("Hello there, how are you today?", np.random.default_rng(0))
    assert 1.0 < len(voice) / AUDIO_RATE < 6.0
    env = envelope(voice)
    spectrum = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), 1 / 100)
    syllabic = spectrum[(freqs > 2) & (freqs < 12)].sum() / spectrum[freqs > 0.5].sum()
    assert syllabic > 0.4  # loudness rises and falls at a syllable rate
    assert band_share(voice, 80, 4000) > 0.6  # voice band
    with_line = audio_for('a man says "we have to leave now" in a quiet room')
    without = audio_for("a man in a quiet room")
    assert not np.allclose(with_line, without)


def test_sound_effects_named_in_the_prompt_are_heard() -> None:
    plan = parse_prompt("thunder rolls over the hills")
    assert "thunder" in plan.sfx
    thunder = soundtrack(plan, 4.0, seed=1)[:, 0]
    calm = soundtrack(parse_prompt("the hills"), 4.0, seed=1)[:, 0]
    assert band_share(thunder, 20, 200) > band_share(calm, 20, 200)


def test_negative_prompt_removes_sounds() -> None:
    plan = parse_prompt("rain and music on a street", "music, rain")
    assert not plan.music and "rain" not in plan.ambience


def test_soundtrack_is_deterministic_per_seed() -> None:
    plan = parse_prompt("ocean waves and seagulls, calm music")
    assert np.array_equal(soundtrack(plan, 2.0, 5), soundtrack(plan, 2.0, 5))
    assert not np.array_equal(soundtrack(plan, 2.0, 5), soundtrack(plan, 2.0, 6))


def test_dialogue_uses_espeak_ng_when_installed(monkeypatch, tmp_path) -> None:
    import io
    import subprocess
    import wave

    from cinegen.engines import soundtrack as audio

    def fake_run(args, **kwargs):
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(22050)
            tone = (np.sin(np.arange(22050) / 22050 * 2 * np.pi * 200) * 8000).astype("<i2")
            wav.writeframes(tone.tobytes())
        assert args[-1] == "hello" and "--stdout" in args
        return subprocess.CompletedProcess(args, 0, buffer.getvalue(), b"")

    monkeypatch.setattr(audio.shutil, "which", lambda name: "/usr/bin/espeak-ng")
    monkeypatch.setattr(audio.subprocess, "run", fake_run)
    voice = audio.espeak("hello")
    assert voice is not None and abs(len(voice) - AUDIO_RATE) <= 3
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    assert audio.espeak("hello") is None


def test_extensions_of_extensions_keep_the_soundtrack_as_loud(tmp_path) -> None:
    # Measured (waves, gulls, wind): the new part's last second at 0.93-1.11x the first
    # video's; before its mix kept the input's loudness, 0.68x, 0.49x, 0.37x.
    spec = spec_for(num_frames=48, audio=True, prompt="waves on a beach, seagulls, wind")
    path = render_to(tmp_path / "v0.mp4", spec)

    def loudness(path: str) -> float:
        track = read_audio(path)
        assert track is not None
        return float(np.sqrt(np.mean(track[-AUDIO_RATE:] ** 2)))

    first = loudness(path)
    for k in range(1, 4):
        info = probe_video(path)
        video = InputVideo(path, info.width, info.height, info.num_frames, info.fps, True)
        extended = replace(
            spec, mode=Mode.EXTENSION, input_video=video, num_frames=info.num_frames + 168, seed=k
        )
        path = render_to(tmp_path / f"v{k}.mp4", extended)
        assert 0.8 * first < loudness(path) < 1.25 * first
