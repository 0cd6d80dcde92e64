"""The page's look: a theme of its own (``gr.themes.Base`` with our palette and system fonts)
and the little CSS the theme cannot reach (the status chip, the download card, chips).

System font stacks only: nothing is fetched from a font service, so the page looks the same
offline and on a locked-down network. Colours are chosen for a WCAG contrast of at least 4.5
for body text in light and dark mode (tests/test_browser_page.py measures it).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import gradio as gr
from gradio.themes.utils import colors, sizes

SANS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
        "Arial", "Noto Sans", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace")
CSS_PATH = Path(__file__).with_name("page.css")


PALETTE = dict(
    body_background_fill="*neutral_50",
    body_background_fill_dark="*neutral_950",
    body_text_color="*neutral_800",
    body_text_color_dark="*neutral_100",
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    background_fill_primary="white",
    background_fill_primary_dark="*neutral_900",
    background_fill_secondary="*neutral_50",
    background_fill_secondary_dark="*neutral_800",
    block_background_fill="white",
    block_background_fill_dark="*neutral_900",
    block_border_color="*neutral_200",
    block_border_color_dark="*neutral_700",
    block_border_width="1px",
    block_shadow="none",
    block_label_background_fill="transparent",
    block_label_background_fill_dark="transparent",
    block_label_text_color="*neutral_600",
    block_label_text_color_dark="*neutral_300",
    block_label_border_width="0px",
    block_title_text_weight="600",
    block_info_text_color="*neutral_600",
    block_info_text_color_dark="*neutral_300",
    border_color_primary="*neutral_200",
    border_color_primary_dark="*neutral_700",
    input_background_fill="white",
    input_background_fill_dark="*neutral_800",
    input_border_color="*neutral_300",
    input_border_color_dark="*neutral_600",
    input_border_color_focus="*primary_500",
    input_border_color_focus_dark="*primary_400",
    color_accent="*primary_600",
    color_accent_soft="*primary_50",
    color_accent_soft_dark="*primary_900",
    link_text_color="*primary_700",
    link_text_color_dark="*primary_300",
    link_text_color_hover="*primary_800",
    link_text_color_hover_dark="*primary_200",
    link_text_color_visited="*primary_700",
    link_text_color_visited_dark="*primary_300",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_600",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    button_primary_border_color="*primary_700",
    button_primary_border_color_dark="*primary_700",
    button_secondary_background_fill="white",
    button_secondary_background_fill_hover="*neutral_100",
    button_secondary_background_fill_dark="*neutral_800",
    button_secondary_background_fill_hover_dark="*neutral_700",
    button_secondary_text_color="*neutral_800",
    button_secondary_text_color_dark="*neutral_100",
    button_secondary_border_color="*neutral_300",
    button_secondary_border_color_dark="*neutral_600",
    button_cancel_background_fill="white",
    button_cancel_background_fill_dark="*neutral_800",
    button_cancel_text_color="*error_text_color",
    button_cancel_border_color="*neutral_300",
    button_cancel_border_color_dark="*neutral_600",
    button_border_width="1px",
    button_large_radius="*radius_md",
    button_small_radius="*radius_md",
    checkbox_label_background_fill="transparent",
    checkbox_label_background_fill_dark="transparent",
    checkbox_label_border_width="0px",
    checkbox_label_padding="*spacing_sm",
    checkbox_background_color_selected="*primary_600",
    checkbox_background_color_selected_dark="*primary_500",
    checkbox_border_color_selected="*primary_600",
    checkbox_border_color_selected_dark="*primary_500",
    slider_color="*primary_600",
    table_border_color="*neutral_200",
    table_border_color_dark="*neutral_700",
    table_even_background_fill="white",
    table_even_background_fill_dark="*neutral_900",
    table_odd_background_fill="*neutral_50",
    table_odd_background_fill_dark="*neutral_800",
    table_row_focus="*primary_50",
    table_row_focus_dark="*primary_900",
    error_text_color="#b91c1c",
    error_text_color_dark="#fca5a5",
    error_background_fill="#fef2f2",
    error_background_fill_dark="#450a0a",
    error_border_color="#fecaca",
    error_border_color_dark="#7f1d1d",
    panel_border_width="0px",
    layout_gap="*spacing_lg",
)
"The theme's variables (gr.themes.Base.set): light and dark values of each."


class PilotTheme(gr.themes.Base):
    """Calm and quiet: slate neutrals, one teal accent, flat blocks with hairline borders."""

    def __init__(self) -> None:
        super().__init__(primary_hue=colors.teal, secondary_hue=colors.slate,
                         neutral_hue=colors.slate, spacing_size=sizes.spacing_md,
                         radius_size=sizes.radius_md, text_size=sizes.text_md,
                         font=SANS, font_mono=MONO)
        self.name = "contextpilot"
        super().set(**PALETTE)


@lru_cache(maxsize=1)
def theme() -> PilotTheme:
    return PilotTheme()


@lru_cache(maxsize=1)
def css() -> str:
    return CSS_PATH.read_text(encoding="utf-8")
