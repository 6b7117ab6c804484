"""Cholec80's seven phases, in the order a laparoscopic cholecystectomy runs through them."""

CHOLEC80_PHASES: list[str] = [
    "Preparation",
    "CalotTriangleDissection",
    "ClippingCutting",
    "GallbladderDissection",
    "GallbladderPackaging",
    "CleaningCoagulation",
    "GallbladderRetraction",
]
CHOLEC80_FPS = 25.0
