"""The README's screenshots, taken by the browser tests themselves from a real run (`make screenshots`).

Only when `DIQUIS_SCREENSHOTS_DIR` names a folder: the normal suite writes nothing into the repository. Each shot
is the browser's viewport, reduced to a palette of `COLOURS` (Pillow, docs/requirements.txt) so that it weighs a
few tens of KB.
"""

import os
from pathlib import Path

DIRECTORY_VARIABLE = "DIQUIS_SCREENSHOTS_DIR"
COLOURS = 64


def save_for_readme(page, name):
    """The viewport as `<DIQUIS_SCREENSHOTS_DIR>/<name>.png` (its path), or None when the variable is unset."""
    folder = os.environ.get(DIRECTORY_VARIABLE)
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, animations="disabled", caret="hide")
    optimise(path)
    return path


def optimise(path):
    """`path` rewritten as a palette PNG of `COLOURS` colours (the admin's flat colours survive it)."""
    from PIL import Image  # only `make screenshots` installs it

    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT)
    reduced.save(path, optimize=True)
