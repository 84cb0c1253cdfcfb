"""MQTT connection settings -> a configured paho-mqtt 2.x client (every program connects the same way)."""

from __future__ import annotations

import socket
import ssl
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from config.schema import MqttConfig


class BufferedClient(mqtt.Client):
    """A paho client that reads and writes the socket in bulk.

    paho reads a packet in three or more ``recv`` calls (its first byte, its length, the rest), one packet
    per wake-up of its network thread, and writes each packet with a ``send`` of its own. Each call lets go
    of the interpreter lock, and a thread busy in Python (the bridge's ingest) then holds it for up to a
    switch interval (5 ms) before the network thread gets it back. Here one ``recv`` of up to 64 KiB
    serves every whole packet it holds, and what one round of writing has queued (a batch's
    acknowledgements and unit states) goes in one ``send``. What is held goes with the socket: paho closes
    the old one (``_sock_close``) before it opens another."""

    _READ = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held = b""  # read from the socket, not yet parsed
        self._unsent = bytearray()  # taken from paho's packets, not yet sent
        self._cork_lock = threading.Lock()
        self._corks = 0
        self._wake: socket.socket | None = None  # paho's wake-up socket while corked

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._held:
            data = super()._sock_recv(max(bufsize, self._READ))
            if len(data) <= bufsize:
                return data
            self._held = data
        out, self._held = self._held[:bufsize], self._held[bufsize:]
        return out

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # Every whole packet already read is handled now: select() would not wake for what this holds.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._held:
            rc = super().loop_read(1)
        return rc

    def _sock_send(self, buf: bytes | bytearray) -> int:
        # paho's every packet, taken whole here; loop_write sends them together.
        self._unsent += buf
        return len(buf)

    def loop_write(self) -> MQTTErrorCode:
        rc = super().loop_write()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = self._send_unsent()
        return rc

    def want_write(self) -> bool:
        return super().want_write() or bool(self._unsent)

    def _send_unsent(self) -> MQTTErrorCode:
        if not self._unsent or self._sock is None:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        try:
            sent = super()._sock_send(self._unsent)
        except BlockingIOError:  # the rest when select() says the socket takes more
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        del self._unsent[:sent]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Packets queued meanwhile (a batch's acknowledgements and unit states) wake the network thread once,
        at the end: paho writes a byte to its wake-up socket for each, a system call that lets go of the
        interpreter lock, and the network thread, woken, takes the lock for each. A packet queued by
        another thread meanwhile goes with them. Corks nest."""
        with self._cork_lock:
            if not self._corks:
                self._wake, self._sockpairW = self._sockpairW, None
            self._corks += 1
        try:
            yield
        finally:
            with self._cork_lock:
                self._corks -= 1
                if not self._corks:
                    wake, self._sockpairW = self._wake, self._wake
                    if wake is not None:
                        try:
                            wake.send(b"0")
                        except OSError:  # full (the thread is awake anyway) or closed (it has stopped)
                            pass

    def _sock_close(self) -> None:
        # paho closes the socket right after writing a DISCONNECT: what is taken goes first, if it can.
        if self._unsent and self._sock is not None:
            try:
                super()._sock_send(self._unsent)
            except OSError:
                pass
        self._held = b""
        self._unsent.clear()
        super()._sock_close()


def make_client(
    cfg: MqttConfig, client_id: str, *, protocol: int = mqtt.MQTTv311, clean_session: bool = True,
    buffered: bool = False,
) -> mqtt.Client:
    """A client with TLS, credentials and backoff set from ``cfg``; not yet connected.

    ``clean_session=False`` (MQTT 3.1.1) keeps the subscriber's session at the broker across restarts;
    MQTT 5 says the same with ``clean_start=False`` and a session expiry at connect time instead.
    """
    client = (BufferedClient if buffered else mqtt.Client)(
        CallbackAPIVersion.VERSION2,
        client_id=cfg.client_id or client_id,
        protocol=MQTTProtocolVersion(protocol),
        clean_session=clean_session if protocol != mqtt.MQTTv5 else None,
    )
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.use_tls:
        tls = cfg.tls
        client.tls_set(
            ca_certs=str(tls.ca) if tls and tls.ca else None,
            certfile=str(tls.cert) if tls and tls.cert else None,
            keyfile=str(tls.key) if tls and tls.key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        if tls and tls.insecure:
            client.tls_insecure_set(True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.on_socket_open = _no_delay
    _remember_connect_errors(client)
    return client


_connect_errors: weakref.WeakKeyDictionary[mqtt.Client, str] = weakref.WeakKeyDictionary()


def last_connect_error(client: mqtt.Client) -> str | None:
    """Why the last connection attempt failed (refused socket, TLS certificate, ...), if it did.

    paho's own retry loop swallows the exception, so a technician would only ever see "unreachable"."""
    return _connect_errors.get(client)


def _remember_connect_errors(client: mqtt.Client) -> None:
    attempt = client.reconnect  # what paho's retry loop calls, looked up on the instance

    def reconnect() -> MQTTErrorCode:
        try:
            rc = attempt()
        except OSError as exc:  # ssl.SSLError is an OSError too
            _connect_errors[client] = str(exc) or exc.__class__.__name__
            raise
        _connect_errors.pop(client, None)
        return rc

    client.reconnect = reconnect  # type: ignore[method-assign]


def _no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """Send small packets at once. paho leaves Nagle's algorithm on, so a PUBLISH written right after
    a PUBACK waited for the broker's delayed TCP ACK: about 40-100 ms added to every alert."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (a websocket wrapper): nothing to tune
        pass


def topic(cfg: MqttConfig, *levels: str) -> str:
    return "/".join((cfg.prefix, *levels))


def frigate_prefix(frigate_topic: str) -> str:
    """Frigate's ``topic_prefix``, from the topic of its events (``frigate/events`` -> ``frigate``)."""
    return frigate_topic.rpartition("/")[0] or frigate_topic


def frigate_filters(frigate_topic: str) -> list[str]:
    """Frigate's snapshots (``{prefix}/{camera}/{label}/snapshot``, JPEG) and its tracked-object updates,
    besides its events: what the bridge subscribes to and the broker's ACL lets it read."""
    prefix = frigate_prefix(frigate_topic)
    return [f"{prefix}/+/+/snapshot", f"{prefix}/tracked_object_update"]


MAX_TOPIC_BYTES = 65535  # a topic is a UTF-8 string with a two-byte length (MQTT 3.1.1 and 5, 1.5.3 / 1.5.4)


def topic_problem(name: str) -> str | None:
    """Why a broker would refuse ``name`` as the topic of a PUBLISH, or None if it would not.

    MQTT forbids U+0000 and the wildcards ``#`` and ``+`` in a published topic (MQTT 5 sections 1.5.4, 4.7);
    Mosquitto also takes control characters (U+0001-U+001F, U+007F-U+009F), UTF-16 surrogates and
    non-characters for a malformed packet and drops the connection of whoever sent it: one bad topic knocks
    the publisher off the broker. Our topics never have an empty level either. Every topic built from
    received text is checked here before it is published."""
    if not name:
        return "empty topic"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "not UTF-8 (a lone surrogate)"
    if size > MAX_TOPIC_BYTES:
        return f"{size} bytes of UTF-8, more than MQTT's {MAX_TOPIC_BYTES}"
    if "" in name.split("/"):
        return "an empty level"
    for ch in name:
        o = ord(ch)
        if ch in "#+":
            return f"the wildcard {ch!r}"
        if o <= 0x1F or 0x7F <= o <= 0x9F:
            return f"the control character U+{o:04X}"
        if 0xD800 <= o <= 0xDFFF or 0xFDD0 <= o <= 0xFDEF or (o & 0xFFFF) >= 0xFFFE:
            return f"U+{o:04X}, which is not a character"
    return None
