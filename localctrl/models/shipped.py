"""Where the models this project trains and ships live inside the installed package."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
SHAPES_BASE_DIR = WEIGHTS_DIR / "shapes-base"  # diffusers pipeline folder (safetensors)
SHAPES_NET_DIR = WEIGHTS_DIR / "shapes-net"  # safetensors + config.json

REBUILD = {
    "shapes-base": "localctrl world pretrain --out DIR (then pass DIR/shapes-base)",
    "shapes-net": "localctrl world train-net --out DIR",
}
