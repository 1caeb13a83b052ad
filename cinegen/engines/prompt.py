"""Read a prompt into a `ScenePlan`: the words the engines know how to show and play.

The vocabulary is small and explicit (a keyword table per aspect). A phrase in the negative
prompt, or after "no"/"without" in the prompt, is removed from the plan, so "rain" in the
negative prompt means no rain particles and no rain ambience.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Each table maps a canonical name to the phrases that call it (matched on word boundaries).
TIMES_OF_DAY: dict[str, tuple[str, ...]] = {
    "sunset": ("sunset", "dusk", "golden hour", "evening", "twilight"),
    "sunrise": ("sunrise", "dawn", "morning", "daybreak"),
    "night": ("night", "midnight", "moonlight", "moonlit", "starry", "stars", "dark"),
    "day": ("day", "daytime", "noon", "midday", "sunny", "afternoon", "bright"),
}

TONES: dict[str, tuple[str, ...]] = {
    "warm": ("warm", "orange", "golden", "amber", "cozy", "fiery", "red tones", "warm tones"),
    "cool": ("cool", "cold", "icy", "blue", "blue tones", "cool tones", "teal", "cyan"),
    "green": ("green", "lush", "emerald", "green tones"),
    "purple": ("purple", "violet", "magenta", "pink", "neon"),
    "mono": ("black and white", "monochrome", "grayscale", "greyscale", "noir"),
    "dark": ("moody", "gloomy", "ominous", "dark tones", "horror", "eerie", "sinister"),
    "bright": ("cheerful", "vibrant", "happy", "colorful", "colourful", "joyful"),
}

WEATHER: dict[str, tuple[str, ...]] = {
    "rain": ("rain", "rainy", "raining", "rainfall", "downpour", "drizzle", "storm", "stormy"),
    "snow": ("snow", "snowy", "snowing", "snowfall", "blizzard", "snowflakes"),
    "fog": ("fog", "foggy", "mist", "misty", "haze", "hazy", "smoke", "smoky"),
    "sparks": ("sparks", "embers", "fireflies", "sparkles", "glitter", "fireworks", "fire"),
    "lightning": ("lightning", "thunderstorm", "thunder"),
    "clouds": ("cloud", "clouds", "cloudy", "overcast"),
    "wind": ("wind", "windy", "breeze", "gust", "gusts"),
}

SETTINGS: dict[str, tuple[str, ...]] = {
    "ocean": ("ocean", "sea", "beach", "waves", "coast", "shore", "surf", "lake", "harbor"),
    "city": ("city", "street", "urban", "downtown", "skyline", "buildings", "traffic", "town"),
    "forest": ("forest", "woods", "trees", "jungle", "park", "garden", "meadow"),
    "desert": ("desert", "dunes", "sand", "canyon"),
    "mountains": ("mountain", "mountains", "valley", "hills", "cliff", "peak", "alps"),
    "space": ("space", "galaxy", "nebula", "planet", "cosmos", "orbit around"),
}

# Moving things the scene can show (sprites that cross the world).
SUBJECTS: dict[str, tuple[str, ...]] = {
    "birds": ("bird", "birds", "seagull", "seagulls", "flock", "eagle", "crow", "crows"),
    "cars": ("car", "cars", "vehicle", "traffic", "truck", "taxi"),
    "boats": ("boat", "boats", "ship", "sailboat", "yacht"),
    "people": ("person", "people", "man", "woman", "child", "walker", "crowd", "figure"),
}

# Camera words → (kind, sign). Signs follow the camera: "pan left" turns the camera left.
CAMERA: dict[str, tuple[str, ...]] = {
    "static": ("static", "locked-off", "locked off", "still shot", "tripod", "fixed camera"),
    "pan_left": ("pan left", "pans left", "panning left", "pan to the left"),
    "pan_right": ("pan right", "pans right", "panning right", "pan to the right", "pan"),
    "tilt_up": ("tilt up", "tilts up", "tilting up", "tilt"),
    "tilt_down": ("tilt down", "tilts down", "tilting down"),
    "zoom_in": ("zoom in", "zooms in", "zooming in", "push in", "pushes in", "zoom"),
    "zoom_out": ("zoom out", "zooms out", "zooming out", "pull back", "pulls back", "pull out"),
    "dolly_in": ("dolly in", "dolly forward", "dolly", "dollies in", "moving forward"),
    "dolly_out": ("dolly out", "dolly back", "dollies out", "moving backward"),
    "truck_left": ("truck left", "tracking left", "track left"),
    "truck_right": ("truck right", "tracking shot", "tracking right", "track right", "tracking"),
    "drone": ("drone", "aerial", "flyover", "fly over", "bird's eye", "birds eye", "fpv"),
    "orbit": ("orbit", "orbiting", "arc shot", "circling"),
    "handheld": ("handheld", "hand-held", "shaky"),
}

SPEEDS: dict[str, tuple[str, ...]] = {
    "slow": ("slow", "slowly", "gentle", "gently", "subtle", "calm", "leisurely"),
    "fast": ("fast", "quick", "quickly", "rapid", "rapidly", "swift", "whip"),
}

AMBIENCE: dict[str, tuple[str, ...]] = {
    "rain": WEATHER["rain"],
    "wind": (*WEATHER["wind"], "blizzard"),
    "ocean": ("ocean", "sea", "waves", "surf", "beach", "shore", "coast"),
    "city": ("city", "street", "traffic", "urban", "downtown", "crowd"),
    "birds": ("birds", "birdsong", "forest", "woods", "chirping", "jungle", "meadow", "park"),
    "fire": ("fire", "campfire", "crackling", "fireplace", "embers"),
}

SFX: dict[str, tuple[str, ...]] = {
    "thunder": ("thunder", "thunderstorm", "lightning"),
    "footsteps": ("footsteps", "footstep", "walking", "steps"),
    "explosion": ("explosion", "explodes", "blast", "boom"),
    "door": ("door", "knock", "knocking", "slam"),
    "bell": ("bell", "bells", "chime", "ding"),
    "horn": ("horn", "honk", "honking", "siren"),
    "whoosh": ("whoosh", "swoosh", "swish"),
    "engine": ("engine", "roar", "motor", "revving"),
    "heartbeat": ("heartbeat", "heart beat", "pulse"),
    "dog": ("dog", "bark", "barking", "woof"),
}

MUSIC_MOODS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "upbeat", "cheerful", "joyful", "playful", "uplifting", "bright"),
    "sad": ("sad", "melancholy", "melancholic", "somber", "sorrowful", "mournful"),
    "tense": ("tense", "suspense", "suspenseful", "ominous", "dark", "eerie", "horror"),
    "epic": ("epic", "cinematic", "heroic", "orchestral", "triumphant", "dramatic"),
    "calm": ("calm", "peaceful", "ambient", "relaxing", "serene", "dreamy", "soft"),
}

TEMPOS: dict[str, tuple[str, ...]] = {
    "slow": ("slow", "adagio", "lullaby", "ballad", "gentle"),
    "fast": ("fast", "energetic", "driving", "upbeat", "allegro", "dance", "techno", "rock"),
}

MUSIC_WORDS = (
    "music",
    "song",
    "soundtrack",
    "score",
    "melody",
    "piano",
    "guitar",
    "strings",
    "orchestra",
    "orchestral",
    "beat",
    "drums",
    "synth",
    "jazz",
    "lullaby",
    "tune",
)

# "no rain", "without any music", "no heavy fog": up to two words after the negation, never
# running on past a conjunction ("no rain and a sunset" must keep the sunset).
_NEGATION = re.compile(
    r"\b(?:no|without|not|never|avoid|except)\s+(?:any\s+|the\s+|a\s+)?"
    r"((?!and\b|but\b|or\b|with\b)[a-z'-]+(?:\s+(?!and\b|but\b|or\b|with\b)[a-z'-]+)?)"
)
_QUOTED = re.compile(r"[\"“”]([^\"“”]{1,300})[\"“”]|(?<![a-z])'([^']{2,300})'(?![a-z])")


@dataclass(frozen=True)
class ScenePlan:
    """Everything the renderer and the sound designer take from the prompt."""

    time_of_day: str = "day"
    tones: tuple[str, ...] = ()
    weather: frozenset[str] = frozenset()
    setting: str = "mountains"
    subjects: tuple[str, ...] = ()
    camera: str = "default"
    speed: float = 1.0
    ambience: tuple[str, ...] = ()
    sfx: tuple[str, ...] = ()
    music: bool = False
    music_mood: str = "calm"
    tempo: str = "medium"
    dialogue: tuple[str, ...] = ()
    banned: frozenset[str] = field(default_factory=frozenset)


def _phrase_in(text: str, phrase: str) -> bool:
    return re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", text) is not None


def _find_all(text: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    """Canonical names whose phrases occur in `text`, ordered by first occurrence."""
    hits: list[tuple[int, str]] = []
    for name, phrases in table.items():
        positions = [m.start() for p in phrases for m in _matches(text, p)]
        if positions:
            hits.append((min(positions), name))
    return [name for _, name in sorted(hits)]


def _matches(text: str, phrase: str) -> list[re.Match[str]]:
    pattern = r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])"
    return list(re.finditer(pattern, text))


def _camera(text: str) -> str:
    """The camera move named in `text`: the longest, then earliest, matching phrase wins."""
    best: tuple[int, int, str] | None = None
    for name, phrases in CAMERA.items():
        for phrase in phrases:
            for match in _matches(text, phrase):
                key = (-len(phrase), match.start(), name)
                if best is None or key < best:
                    best = key
    return best[2] if best else "default"


def _negated(prompt: str) -> str:
    """The words a prompt excludes itself ("no rain", "without music")."""
    return " ".join(m.group(1) for m in _NEGATION.finditer(prompt))


def _dialogue(prompt: str) -> tuple[str, ...]:
    lines = []
    for match in _QUOTED.finditer(prompt):
        line = (match.group(1) or match.group(2) or "").strip()
        if line:
            lines.append(line)
    return tuple(lines)


def parse_prompt(prompt: str, negative_prompt: str = "") -> ScenePlan:
    """Turn the prompt (minus whatever the negative prompt names) into a plan."""
    dialogue = _dialogue(prompt)
    text = _QUOTED.sub(" ", prompt).lower()
    banned_text = (negative_prompt or "").lower() + " " + _negated(text)
    text = _NEGATION.sub(" ", text)

    def keep(table: dict[str, tuple[str, ...]]) -> list[str]:
        banned = set(_find_all(banned_text, table))
        return [name for name in _find_all(text, table) if name not in banned]

    times = keep(TIMES_OF_DAY)
    settings = keep(SETTINGS)
    speeds = keep(SPEEDS)
    speed = 0.5 if speeds[:1] == ["slow"] else 2.0 if speeds[:1] == ["fast"] else 1.0
    moods = keep(MUSIC_MOODS)
    tempos = keep(TEMPOS)
    camera = _camera(text)
    if camera != "default" and _camera(banned_text) == camera:
        camera = "default"
    music_banned = any(_phrase_in(banned_text, w) for w in MUSIC_WORDS)
    if any(_phrase_in(banned_text, w) for w in ("speech", "dialogue", "talking", "voice")):
        dialogue = ()
    banned_words = frozenset(re.findall(r"[a-z']+", banned_text))
    return ScenePlan(
        time_of_day=times[0] if times else "day",
        tones=tuple(keep(TONES)),
        weather=frozenset(keep(WEATHER)),
        setting=settings[0] if settings else "mountains",
        subjects=tuple(keep(SUBJECTS)),
        camera=camera,
        speed=speed,
        ambience=tuple(keep(AMBIENCE)),
        sfx=tuple(keep(SFX)),
        music=not music_banned and any(_phrase_in(text, w) for w in MUSIC_WORDS),
        music_mood=moods[0] if moods else "calm",
        tempo=tempos[0] if tempos else "medium",
        dialogue=dialogue,
        banned=banned_words,
    )
