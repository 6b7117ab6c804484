"""The phases of the surgical datasets hvl reads, in the order an operation runs through them."""

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

# AutoLaparo Task 1 (laparoscopic hysterectomy): label ids 1–7 in this order, as its README lists them.
AUTOLAPARO_PHASES: list[str] = [
    "Preparation",
    "Dividing Ligament and Peritoneum",
    "Dividing Uterine Vessels and Ligament",
    "Transecting the Vagina",
    "Specimen Removal",
    "Suturing",
    "Washing",
]
AUTOLAPARO_LABEL_FPS = 1.0  # one annotation row per second of video
