"""The HTML report (installed as `curator.reports`); reads the workspace, never imports torch."""
