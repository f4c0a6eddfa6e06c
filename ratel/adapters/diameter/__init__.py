"""Diameter credit control (Gy/Ro) on python-diameter."""
