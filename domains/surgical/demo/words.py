"""Synonyms both procedures use for the same instruments and materials: one list each, filling ``{slots}``.

The order of each list is part of the seeded output (a synonym is drawn by index): change a list and every
demo text that uses it changes."""
from __future__ import annotations

__all__ = ["BAG", "CLIP", "CLIPPER", "CLIPS", "FORCEPS", "GRASPER", "HOOK", "IRRIGATION", "SCISSORS", "SMOKE",
           "SUCTION"]

HOOK = ["hook", "cautery hook", "electrocautery hook", "diathermy hook"]
GRASPER = ["grasper", "grasping forceps", "forceps"]
FORCEPS = ["grasper", "forceps"]
SMOKE = ["smoke", "smoke plume", "vapour"]
BAG = ["specimen bag", "retrieval bag", "endobag", "bag"]
SUCTION = ["suction", "suction irrigation", "suction cannula", "irrigator"]
IRRIGATION = ["irrigation", "saline", "irrigation fluid", "water"]
CLIPS = ["clips", "titanium clips", "metal clips"]
CLIP = ["clip", "titanium clip"]
CLIPPER = ["clip applier", "clipper", "clip applicator"]
SCISSORS = ["scissors", "laparoscopic scissors", "scissor"]
