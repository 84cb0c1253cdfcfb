"""In-band signalling heard in a radio's audio: decoders (sans-I/O) and the audio sources that feed them."""
