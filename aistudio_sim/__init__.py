"""AI Studio simulator: a local HTTPS fake of the AI Studio page and its RPCs (see README.md)."""
