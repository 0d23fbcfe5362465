"""Write the bundled sample photos into data/samples/ (run once; the result is in Git).

Sources: scikit-image's packaged ``skimage.data`` images (see data/samples/README.md for
their licences), shrunk with OpenCV's INTER_AREA so the whole pipeline runs in about a
minute on two cores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

OUT = Path(__file__).resolve().parents[1] / "data" / "samples"
MAX_SIDE = 160
# name -> file written (a JPEG among PNGs, grey among colour)
SAMPLES = {
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "coins": "coins.png",
    "coffee": "coffee.jpg",
    "chelsea": "chelsea.png",
}


def shrink(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = MAX_SIDE / max(height, width)
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, filename in SAMPLES.items():
        image = shrink(getattr(skimage.data, name)())
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if filename.endswith(".jpg") else []
        cv2.imwrite(str(OUT / filename), image, params)
        print(f"{OUT / filename}: {image.shape}")


if __name__ == "__main__":
    main()
