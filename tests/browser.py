"""A real browser for tests: headless Chromium (Debian's `chromium`), the DOM after JavaScript ran, and screenshots.

A missing Chromium fails the test naming what to install (`.ci/run` installs it); it never skips.
"""

import shutil
import subprocess
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots a person can look at (git-ignored)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: `apt-get install chromium` (Debian; .ci/run installs it)"
    return found


def rendered_dom(url: str, wait_ms: int = 15000) -> str:
    """The page's DOM once its scripts have had `wait_ms` of virtual time."""
    result = subprocess.run([chromium(), *FLAGS, f"--virtual-time-budget={wait_ms}", "--dump-dom", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, name: str, wait_ms: int = 15000, size: tuple[int, int] = (1400, 900)) -> Path:
    """A PNG of the page under test-artifacts/, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run([chromium(), *FLAGS, f"--virtual-time-budget={wait_ms}", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={path}", url], capture_output=True, timeout=120, check=True)
    return path
