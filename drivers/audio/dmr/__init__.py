"""DMR (ETSI TS 102 361) from a receiver's discriminator audio: the ``dmr`` decoder and its parts.

    fec.py       Golay, QR, Hamming, BPTC(196,96), RS(12,9), trellis 3/4, CRCs, embedded LC (annex B)
    layer2.py    bursts, sync words, slot type, EMB, CACH, LC, CSBK, data header and blocks
    location.py  IPv4/UDP in data, Motorola LRRP, ETSI LIP, ETSI text
    modem.py     4FSK with RRC shaping as a discriminator outputs it, and an FM receiver with noise
    encoder.py   voice calls, CSBKs and data packets as a repeater or a radio sends them
    decoder.py   :class:`DmrDecoder`, the sans-I/O audio decoder
"""
