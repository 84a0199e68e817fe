"""Labelled training data: mocap readers, body rendering, event simulation, DHP19 format."""
