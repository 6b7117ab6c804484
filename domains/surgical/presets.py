"""Demo presets: which properties of real surgical video the synthetic demo imitates.

``default`` is the original demo (every phase its own picture, dense and well-aligned
narration): a model learns it in minutes, so schemes cannot be told apart on it.
``realistic`` adds the ways real laparoscopic video (Cholec80, SVL) is hard, each a
parameter below so a user can switch one off and see what it does. The values come from
what is known of real data, not from any expected outcome of a comparison:

* **look-alike phases** (``lookalike``): in Cholec80 Calot-triangle dissection and
  gallbladder dissection use the same grasper and hook on the same anatomy, and packaging
  and retraction both show a grasper and the white bag; in a hysterectomy (AutoLaparo) the
  ligaments, the peritoneum and the uterine vessels are divided with the same energy
  device along the side of the uterus. The phase on the left of each entry is drawn with
  the scene and instrument motion of the phase on its right; only its own smoke density (``haze``, cautery)
  is kept, so single frames differ little. A pair applies to the procedure its phases
  belong to (``hvl.domains.surgical.demo.get_procedure``).
* **sparse narration** (``narration_rate``): surgeons are silent much of the time; a clip
  window without speech has no clip-level text (it drops out of the clip level).
* **unrelated narration** (``unrelated_rate``): about half of what is said in lecture-style
  surgical video (SVL) is chit-chat, questions, instructions to the assistant.
* **lag** (``lag_std`` / ``lag_max`` seconds): narration leads or lags the picture by a few
  seconds (HowTo100M-style misalignment); a related narration describes the phase at
  ``clip centre + lag``, lag ~ Normal(0, lag_std) truncated to ±lag_max.
* **no clean paraphrase** (``clean_paraphrase``): the second clip text is a second ASR
  transcript of the same speech (HecVL pairs ASR with Whisper sentences), not a tidy
  rewrite.
* **summaries and abstracts stay complete**: every phase has its summary and the abstract
  lists all phases in order, so the phase and video levels carry what narration lacks.

``realistic_centre_b`` is ``realistic`` filmed in another hospital: another camera's white
balance (``white_balance``, grey levels added to every colour), dimmer light (``gain``) and
instruments of another make (``instrument_tint`` on shafts and metal). It is for testing
transfer across centres: train on ``realistic``, evaluate on it.

``long`` is for long-form video (issue 38): procedures of 20-30 minutes at 1 fps and 32 px, narrated sparsely,
with up to three short bleeding episodes (``bleeds``) inside the other phases. The abstract is short (it fits a
64-token text encoder) and says how many bleeds there were and in which phases; each bleed's phase summary says
which of how many it is. Only a video level that sees the whole recording can match them.
"""
from __future__ import annotations

from hvl.core.errors import HVLInputError
from pydantic import BaseModel, ConfigDict, Field, model_validator


class DemoPreset(BaseModel):
    """Properties of one demo preset; ``default`` reproduces the original demo byte for byte."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lookalike: dict[str, str] = Field(default_factory=dict,
                                      description="phase -> phase whose scene and instruments it is drawn with")
    narration_rate: float = Field(1.0, ge=0.0, le=1.0, description="share of clip windows with any narration")
    unrelated_rate: float = Field(0.2, ge=0.0, le=1.0, description="share of narrations unrelated to the surgery")
    lag_std: float = Field(0.0, ge=0.0, description="std (s) of the narration's shift against the picture")
    lag_max: float = Field(0.0, ge=0.0, description="|lag| is truncated here (s)")
    clean_paraphrase: bool = Field(True, description="second clip text a clean rewrite (else a second ASR pass)")
    white_balance: tuple[float, float, float] = Field((0.0, 0.0, 0.0), description="RGB offset of every colour")
    gain: float = Field(1.0, gt=0.0, description="light level (multiplies the picture)")
    instrument_tint: tuple[float, float, float] = Field((0.0, 0.0, 0.0),
                                                        description="RGB offset of instrument shafts and metal")
    minutes: tuple[float, float] | None = Field(None, description="procedure length range in minutes (None: the "
                                                "demo's 60-95 s)")
    bleeds: int = Field(0, ge=0, le=3, description="up to this many bleeding episodes (irrigation and coagulation, "
                        "20-40 s each) inside the other phases; the abstract counts them and says where they were")
    fps: float | None = Field(None, gt=0, description="frame rate this preset is drawn at (None: generate's)")
    size: int | None = Field(None, ge=32, description="frame size this preset is drawn at (None: generate's)")

    @model_validator(mode="after")
    def _check(self) -> DemoPreset:
        from hvl.domains.surgical.phases import AUTOLAPARO_PHASES, CHOLEC80_PHASES

        bad = {k for kv in self.lookalike.items() for k in kv} - set(CHOLEC80_PHASES) - set(AUTOLAPARO_PHASES)
        if bad:
            raise ValueError(f"lookalike: unknown phase(s) {sorted(bad)}; use the phases of one procedure: "
                             f"{CHOLEC80_PHASES} or {AUTOLAPARO_PHASES}")
        mixed = [kv for kv in self.lookalike.items() if not any(set(kv) <= set(ph) for ph in
                                                                  (CHOLEC80_PHASES, AUTOLAPARO_PHASES))]
        if mixed:
            raise ValueError(f"lookalike: {mixed} pairs phases of two procedures; a phase can only look like "
                             "another phase of its own operation")
        if set(self.lookalike) & set(self.lookalike.values()):
            raise ValueError("lookalike: a phase drawn like another cannot itself be a model for a third")
        return self

    @property
    def is_default(self) -> bool:
        return self == PRESETS["default"]


PRESETS: dict[str, DemoPreset] = {
    "default": DemoPreset(name="default"),
    "realistic": DemoPreset(
        name="realistic",
        lookalike={"GallbladderDissection": "CalotTriangleDissection",
                   "GallbladderRetraction": "GallbladderPackaging",
                   "Dividing Uterine Vessels and Ligament": "Dividing Ligament and Peritoneum"},
        narration_rate=0.6, unrelated_rate=0.5, lag_std=3.0, lag_max=6.0, clean_paraphrase=False),
}
PRESETS["realistic_centre_b"] = PRESETS["realistic"].model_copy(update={
    "name": "realistic_centre_b", "white_balance": (-10.0, 4.0, 16.0), "gain": 0.85,
    "instrument_tint": (-25.0, -10.0, 35.0)})
# Long procedures at 1 fps whose abstracts need the whole video: how many bleeds and in which phases. A 16-frame
# sample of a 25-minute video sees one frame every ~90 s and misses most 20-40 s bleeds; 256 frames see each one.
PRESETS["long"] = PRESETS["realistic"].model_copy(update={
    "name": "long", "lookalike": {}, "narration_rate": 0.15, "minutes": (20.0, 30.0), "bleeds": 3, "fps": 1.0,
    "size": 32})
INSTRUMENT_COLOURS = ("metal", "shaft", "tipmetal", "clip", "port")


def get_preset(preset: str | DemoPreset | None) -> DemoPreset:
    """A preset by name (``default``, ``realistic``) or a :class:`DemoPreset` built by the caller."""
    if preset is None:
        return PRESETS["default"]
    if isinstance(preset, DemoPreset):
        return preset
    if preset not in PRESETS:
        raise HVLInputError(f"demo: unknown preset '{preset}'; use one of {sorted(PRESETS)}")
    return PRESETS[preset]
