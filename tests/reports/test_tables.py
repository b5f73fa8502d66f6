import math

import pandas as pd

from reports.tables import markdown_table


def test_best_is_bold_and_second_underlined_in_each_direction():
    table = pd.DataFrame(
        {"edge_f1_in": [0.5, 0.7, 0.6], "fid": [10.0, 30.0, 20.0], "psnr_out": [math.nan, 21.0, 25.0]},
        index=["text-only", "global", "z0"],
    )
    text = markdown_table(table, {"edge_f1_in": True, "fid": False, "psnr_out": True}, digits=2)
    lines = text.strip().splitlines()
    assert lines[0] == "| method | edge_f1_in ↑ | fid ↓ | psnr_out ↑ |"
    assert lines[2] == "| text-only | 0.50 | **10.00** | n/a |"
    assert lines[3] == "| global | **0.70** | 30.00 | <u>21.00</u> |"
    assert lines[4] == "| z0 | <u>0.60</u> | <u>20.00</u> | **25.00** |"
