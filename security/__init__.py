"""Broker security for a site: who may connect (a private CA and its client certificates,
:mod:`security.pki`) and what each identity may do on the broker (a Mosquitto ACL file,
:mod:`security.acl`); identities and roles are :mod:`security.identities`. Used by the command line
(``pttbridge certs``, ``pttbridge broker-acl``), never by the programs at run time.

An identity is ``{role}-{name}``: the certificate's Common Name (the broker takes it as the username,
``use_identity_as_username``) or, for a device that cannot hold a certificate, the username of a
password. The role is everything before the first ``-``, so an identity names exactly one role:

    gw-{gateway}      a field gateway: publishes its own events, audio, state and levels; reads its own
                      commands and channel plan
    console-{desk}    a dispatcher console: sends bridge/cmd; reads incidents, units, gateway state and
                      levels
    cam-{camera}      a camera (or its detector): publishes cam/{camera}/event only
    frigate-{name}    a Frigate NVR: its own topic tree (frigate/#), which the bridge reads events,
                      snapshots and tracked-object updates from
    bridge-{name}     a bridge: reads what gateways, cameras and consoles send; publishes incidents,
                      units, gateway commands and plans
    monitor-{name}    read-only view of everything under the prefix, for operations and tests

The ACL names every identity with explicit ``user`` blocks, generated from the site's lists of
gateways, consoles, cameras, ... (``pttbridge broker-acl``). It has no ``pattern`` lines on purpose: a
pattern applies to every user, so ``pattern write gw/%u/event/+`` would let a console identity publish
events of a made-up gateway named after itself. An identity that is not in the file may do nothing at
all, which is also how a lost device is shut out at once (regenerate without it, send SIGHUP).

The PKI is plain openssl (``pttbridge certs``): a CA, a server certificate for the broker, one client
certificate per identity (EC P-256 keys, files only readable by their owner), and a revocation list
(``crl.pem``) for certificates that must no longer connect at all.
"""
