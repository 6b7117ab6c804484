"""What the simulated games contain: the games (sky, ground, scene words), object kinds and colours, bug types."""
from __future__ import annotations

from typing import Any

__all__ = ["BUGS", "COLOURS", "GAMES", "KINDS", "MOMENT_SECONDS", "NO_BUG"]

MOMENT_SECONDS = 2.5  # length of a clip-level moment (its text describes this window)
COLOURS: dict[str, tuple[int, int, int]] = {"red": (215, 40, 40), "blue": (40, 90, 230), "yellow": (240, 210, 30),
                                            "purple": (150, 60, 200)}
KINDS = ("car", "ball", "box", "character")
BUGS = ("falling_through_floor", "floating_flying", "stuck_in_object", "stretched_jittering")
NO_BUG = "no_bug"
GAMES: dict[str, dict[str, Any]] = {
    "hill_racer": {"sky": (140, 195, 240), "ground": (60, 140, 55), "backdrop": (95, 160, 120),
                   "scene": ["a grassy hill level", "green rolling hills under a blue sky", "a sunny meadow map"]},
    "desert_drive": {"sky": (240, 220, 175), "ground": (165, 110, 55), "backdrop": (200, 150, 95),
                     "scene": ["a desert track", "sand dunes in the desert", "a dusty desert map"]},
    "moon_base": {"sky": (20, 22, 45), "ground": (135, 135, 140), "backdrop": (70, 70, 90),
                  "scene": ["a grey moon surface", "a lunar base at night", "a crater field on the moon"]},
}
