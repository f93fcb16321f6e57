"""Media in and out: video probing, decoding, encoding and audio (PyAV), and images as people send them."""
