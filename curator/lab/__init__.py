"""The arithmetic lab: an embedded world of verifiable problems and a tiny model, built on this machine."""
