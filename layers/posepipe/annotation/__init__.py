"""Annotation, kept apart from inference: persons drawn over pictures and rendered into H.264 video."""
