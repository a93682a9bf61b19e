"""The module's screen and menus: screens.py (what each screen draws and does), menu.py (the
screen stack, the menu data from ui/menu.toml, the display loop), paint.py (fonts, rows, bars),
panel.py (the virtual panel in a browser), screenshot.py (PNGs of every screen)."""
