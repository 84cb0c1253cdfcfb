"""What operations watch a running program through: Prometheus metrics over HTTP (:mod:`monitoring.prometheus`).

Shared by the gateway and the bridge, which each render their own metrics (``gateway/metrics.py``,
``bridge/metrics.py``); it imports nothing of ours, so either side may use it and the two stay apart.
"""
