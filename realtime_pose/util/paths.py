"""Where the package's embedded assets live."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: The small MobileNetV2-0.35 bundle trained on the synthetic scene; ``make demo`` uses it.
DEMO_BUNDLE = ASSETS / "demo_bundle"
