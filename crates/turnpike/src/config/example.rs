//! The text printed by `turnpike config example`: every key, documented, commented out at its
//! default.

/// A complete, commented configuration file. Every key is present and commented out; for keys with
/// a default the commented value is the default, so uncommenting a line changes nothing until it is
/// edited. (Tests check that it passes `config check`, that it names every key, and that its
/// defaults are real.)
pub const EXAMPLE: &str = r#"# Turnpike configuration (TOML).
# Check it with: turnpike config check FILE
#
# The file is flat: one `key = value` per line, no [tables]. Every key can also be given as a
# `serve` flag (--tcp-idle-timeout 60) or an environment variable (TURNPIKE_TCP_IDLE_TIMEOUT=60).
# Precedence, lowest first: built-in default < this file < environment variable < flag.
# Relative paths in this file are relative to the directory of this file.

## Listeners #######################################################################################

# STUN/TURN listen addresses (IP:PORT), served over UDP and TCP.
# Default: ["0.0.0.0:3478"]
# listen = ["0.0.0.0:3478"]

# Serve UDP on the listen addresses.
# Default: true
# udp = true

# Serve TCP on the listen addresses.
# Default: true
# tcp = true

## TLS (5349 is the standard port of stuns: and turns:) ############################################

# TLS listen addresses; used only when both tls-cert and tls-key are set.
# Default: ["0.0.0.0:5349"]
# tls-listen = ["0.0.0.0:5349"]

# PEM certificate chain (leaf first). Must be set together with tls-key; the file must exist.
# Default: unset (no TLS)
# tls-cert = "/etc/turnpike/cert.pem"

# PEM private key matching tls-cert.
# Default: unset (no TLS)
# tls-key = "/etc/turnpike/key.pem"

# STUN and TURN over DTLS (RFC 7350) on dtls-listen (UDP), with tls-cert and tls-key: Binding, and
# TURN allocations whose client transport is DTLS (relay on UDP). DTLS 1.2 with an ECDSA key (an
# RSA key leaves DTLS off, with a warning).
# Default: true
# dtls = true

# DTLS listen addresses (UDP); used only when both tls-cert and tls-key are set.
# Default: the tls-listen addresses (as coturn does)
# dtls-listen = ["0.0.0.0:5349"]

## NAT behaviour discovery (RFC 5780) ##############################################################
# Needs exactly one `listen` address with a specific IP: the primary address, such as
# 192.0.2.1:3478.

# A second IP address of this host, same family as the primary, different from it.
# Setting it enables RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST, RESPONSE-ORIGIN).
# Default: unset (RFC 5780 off)
# alternate-ip = "192.0.2.2"

# A second port, different from the primary port. Without it only the IP changes: clients
# (turnpike nat) still tell endpoint-independent mapping and filtering from the rest, but not
# address-dependent from address-and-port-dependent (RFC 5780 test III needs the port).
# Default: unset (no second port)
# alternate-port = 3479

## Behaviour #######################################################################################

# Text of the SOFTWARE attribute added to responses (fewer than 128 characters, RFC 8489 §14.14).
# Empty or unset: no SOFTWARE attribute, which tells attackers less.
# Default: unset
# software = "turnpike"

# Close TCP and TLS connections that have been idle for this many seconds (1..=86400).
# Default: 300
# tcp-idle-timeout = 300

# Most concurrent TCP plus TLS connections; further connections are refused (1..=1000000).
# Default: 10000
# max-tcp-connections = 10000

# Most concurrent TCP plus TLS connections from one IPv4 address or one IPv6 /64, so that a
# single source cannot take every slot (1..=1000000, capped at max-tcp-connections). Leave room
# for offices and campuses behind one NAT.
# Default: a tenth of max-tcp-connections (1000)
# max-tcp-connections-per-ip = 1000

# Seconds a STUN/TURN message over TCP or TLS may take to arrive, from its first byte, and a
# TLS handshake to complete (1..=300). A client trickling a message byte by byte is closed.
# Default: 10
# tcp-frame-timeout = 10

# Seconds a write to a TCP or TLS client may stay blocked because the client does not read,
# before the connection is closed (1..=300).
# Default: 10
# tcp-write-timeout = 10

# Worker threads (0..=1024; 0: one per core). Each has its own UDP listener sockets, bound with
# SO_REUSEPORT so that the kernel spreads clients over them (a client always reaches the same
# worker), and its own allocations; TCP and TLS clients go to a worker by a hash of their address.
# Without SO_REUSEPORT the server runs one worker.
# Default: 0
# workers = 0

# The kernel fast path: an XDP program on these interfaces relays ChannelData of bound channels
# in the kernel, both ways, without waking the server (everything else — authentication,
# permissions, Send/Data indications, TCP/TLS/DTLS, capped allocations — stays in userspace,
# and the program passes whatever it does not fully handle). Needs root (CAP_BPF and
# CAP_NET_ADMIN); native mode where the driver has it, generic otherwise. When it cannot attach,
# one warning, and everything relays in userspace. Listen and relay addresses must be concrete
# IPs for a channel to take the fast path. See docs/turn.md "The kernel fast path".
# Example: xdp-interfaces = ["eth0"]
# Default: [] (off)
# xdp-interfaces = []

## TURN: credentials (RFC 8489 §9.2, RFC 8656 §5) ###############################################
# TURN requests need long-term credentials from one of: `users`, `user-db`, `rest-secrets`.
# With none of them every Allocate is refused (TURN stays closed until you configure one).

# Answer TURN requests (Allocate, Refresh, CreatePermission, ChannelBind, Send).
# false: STUN only.
# Default: true
# turn = true

# Realm of the long-term credentials, fewer than 128 characters; users' keys depend on it.
# RFC 8489 recommends the provider's domain name.
# Default: "turnpike"
# realm = "turnpike"

# Static users, "NAME:PASSWORD" (coturn's user=), such as ["alice:PASSWORD1", "bob:PASSWORD2"].
# Names: not empty, no ':'. Only the keys derived from the passwords are kept in memory;
# passwords are never logged. Keep this file readable by the server only.
# Default: [] (none)
# users = []

# SQLite user database, managed with `turnpike user add|remove|list`. It must exist; users of
# another realm than `realm` are an error at start.
# Default: unset (no database)
# user-db = "/var/lib/turnpike/users.db"

# TURN REST API shared secrets (ephemeral credentials: username "EXPIRY:ID", password
# base64(HMAC-SHA1(secret, username))), such as ["SECRET"]; list several while rotating.
# At least 8 bytes; use 16 or more random bytes: `openssl rand -base64 24`.
# Default: [] (REST credentials off)
# rest-secrets = []

# Key of the stateless nonces, 64 hex digits (`openssl rand -hex 32`). Give every node of a
# cluster the same one so that nonces survive restarts and work on every node.
# Default: unset (random at every start)
# nonce-secret = "REPLACE with the output of: openssl rand -hex 32"

# Seconds a nonce stays valid before 438 (Stale Nonce) (30..=86400).
# Default: 600
# nonce-lifetime = 600

# Failed authentications per source IP per minute; further requests from it are ignored for
# the rest of the minute (1..=1000000).
# Default: 10
# auth-failures = 10

# Bytes per second a source may receive in unauthenticated UDP answers (Binding responses, 401
# and 438 challenges) beyond the size of its requests, with a burst of 4 s of it; answers
# beyond are dropped (clients retransmit). Caps what a spoofed victim gets (0..=100000000,
# 0: off).
# Default: 4096
# amplification-budget = 4096

## TURN: relay addresses ###########################################################################

# IPs the relay sockets bind to. One address holds one allocation per relay port (16384 with the
# default range); list several of a family for more: allocations take them in turn, moving on
# when one has no free port (an external-ip then cannot be used for that family). When unset: the PRIVATE
# part of an IPv4 external-ip; else the listen IP if `listen` has exactly one specific IPv4;
# else the first IPv4 interface address that is not loopback or link-local; else 127.0.0.1
# (with a warning). IPv6 is relayed only when configured (here or in external-ip).
# Default: unset (detected)
# relay-ip = ["192.0.2.10"]

# Behind a 1:1 NAT: "PUBLIC" or "PUBLIC/PRIVATE", at most one per family. PUBLIC is advertised
# in XOR-RELAYED-ADDRESS instead of the relay IP PRIVATE (or the relay IP of its family).
# Default: [] (advertise the relay IPs)
# external-ip = ["203.0.113.10/10.0.0.10"]

# Relay port range (min-port >= 1024, min-port <= max-port).
# Default: 49152 and 65535
# min-port = 49152
# max-port = 65535

## TURN: limits ####################################################################################

# Longest allocation lifetime granted, seconds (600..=86400; RFC 8656 recommends 3600).
# Default: 3600
# max-allocation-lifetime = 3600

# How long a permission and a channel binding last unless the client refreshes them, seconds
# (1..=3600). RFC 8656 fixes 300 and 600 and clients refresh on that schedule: other values are
# for tests that watch an expiry (coturn has the same two keys). The server warns at start.
# Default: 300 and 600
# permission-lifetime = 300
# channel-lifetime = 600

# Allocations one username may hold at once (486 when over); 0 = no limit.
# Default: 0
# user-quota = 0

# Allocations the server holds at once (508 when over) (1..=10000000).
# Default: 10000
# total-quota = 10000

# Bytes per second per allocation, both directions together; 0 = no cap.
# Default: 0
# max-bps = 0

# Live permissions per allocation (1..=4096).
# Default: 128
# max-permissions = 128

# Channel bindings per allocation (1..=4096).
# Default: 128
# max-channels = 128

# Accept channel numbers 0x5000-0x7FFF, as RFC 5766 did, besides RFC 8656's 0x4000-0x4FFF.
# RFC 5766 clients (coturn's turnutils among them) still pick from the old range; false is
# strict RFC 8656 (such ChannelBind requests get 400).
# Default: true
# rfc5766-channel-numbers = true

# Grant TCP allocations (RFC 6062): an Allocate with REQUESTED-TRANSPORT TCP over a TCP or TLS
# connection gets a relayed address that accepts and makes TCP connections to peers
# (Connect, ConnectionBind, ConnectionAttempt). false: such requests get 442.
# Default: true
# tcp-relay = true

# Peer TCP connections one TCP allocation holds at once, connecting, waiting for their
# ConnectionBind or relaying (1..=4096). A Connect over the limit gets 508; a peer's
# connection over it is closed.
# Default: 32
# max-peer-connections = 32

## TURN: peer policy ###############################################################################
# Peers on loopback, private (RFC 1918), link-local, CGNAT, multicast and other special-purpose
# ranges are denied by default. Entries are CIDR networks or single IPs; the longest matching
# prefix decides, a tie denies, and an explicit allow overrides the built-in deny list.

# Networks a peer may be in even though the built-in list denies them.
# Default: [] (none)
# allowed-peers = ["10.1.2.0/24"]

# Networks a peer may not be in.
# Default: [] (none)
# denied-peers = ["198.51.100.0/24"]

## HTTP: signaling, ICE server API, web pages (docs/http.md) #######################################
# GET /ws (signaling WebSocket), /api/ice-servers, /healthz, and the pages /, /room/NAME,
# /diagnostics. Over plain HTTP, and over HTTPS too (https:// and wss://) with https-listen.

# Serve HTTP.
# Default: true
# http = true

# HTTP listen addresses (IP:PORT); none may be a STUN/TURN TCP or TLS address.
# Default: ["0.0.0.0:8080"]
# http-listen = ["0.0.0.0:8080"]

# HTTPS listen addresses (IP:PORT): the same app over TLS (ALPN http/1.1), with the same limits.
# Needs a certificate: https-cert and https-key, else tls-cert and tls-key. Port 443 without
# root: see docs/operations.md, "HTTPS".
# Default: [] (no HTTPS)
# https-listen = []

# PEM certificate chain and private key of the HTTPS listeners, both or neither; re-read on
# reload. Relative paths are relative to this file.
# Default: tls-cert and tls-key
# https-cert = "/etc/turnpike/https-cert.pem"
# https-key = "/etc/turnpike/https-key.pem"

# Key of the signaling join tokens, at least 16 bytes (`openssl rand -base64 24`). When set,
# `join` needs a token minted with it: `turnpike token --room ROOM --ttl 1h`. Empty: no tokens.
# Default: "" (joining needs no token)
# signaling-secret = ""

# Without signaling-secret, TURN credentials (in /api/ice-servers and `joined`) go only to local
# callers: a TCP peer on loopback whose request has no Forwarded, X-Forwarded-For or X-Real-IP
# header. Others get STUN URLs only. true hands credentials to anyone who can reach HTTP, which
# makes this server an open relay for them (a warning is logged at start). With
# signaling-secret set, a valid join token is needed instead and this key is ignored.
# Default: false
# open-credentials = false

# TURN credentials handed out over HTTP per source (an IPv4 address, an IPv6 /64) per minute, in
# bursts of as many; more get 429 with Retry-After (1..=10000).
# Default: 20
# credential-rate = 20

# Concurrent HTTP connections (pages, API calls, WebSockets) one source IP may hold; more are
# closed at once. Leaves room for offices behind one NAT while no single source can take the
# whole max-tcp-connections (1..=1000000).
# Default: a tenth of max-tcp-connections (1000)
# http-connections-per-ip = 1000

# Origins whose pages may open the signaling WebSocket, such as ["https://app.example.org"]
# (SCHEME://HOST[:PORT], as browsers send the Origin header). Requests without Origin (not from
# a browser) are always allowed. Empty: any origin.
# Default: [] (any origin)
# allowed-origins = []

# Host name or IP put in the stun:/turn:/turns: URLs handed out, such as "turn.example.org".
# Empty: the host the browser used to reach this server (the request's Host header).
# Default: "" (the request's host)
# ice-host = ""

# Seconds the TURN credentials handed out by /api/ice-servers and `joined` stay valid
# (60..=604800).
# Default: 86400
# ice-ttl = 86400

# Peers one signaling room holds; the next `join` gets `room-full` (2..=1000).
# Default: 16
# room-capacity = 16

# Largest signaling frame, bytes; larger ones get `too-large` (1024..=1048576).
# Default: 65536
# max-message-bytes = 65536

# Signaling frames per second per connection, with bursts of twice as many; more get
# `rate-limited` (1..=10000).
# Default: 50
# message-rate = 50

## Metrics (docs/operations.md, "Metrics") ########################################################
# Prometheus text exposition (OpenMetrics) at GET /metrics. Keep it off the public internet: it
# tells how busy the server is and which sources fail to log in (counts only, no addresses).

# The metrics listener, IP:PORT; "off" turns it off. Loopback by default, so that it is never
# public by accident: scrape it from this host, or give it a private address.
# Default: "127.0.0.1:9641"
# metrics-listen = "127.0.0.1:9641"

# Serve GET /metrics on the HTTP listeners (http-listen) too, for a scraper that reaches only
# those (as public as they are).
# Default: false
# metrics-on-http = false

## Operations: drain and admin API (docs/operations.md) ###########################################

# Where a draining (SIGTERM, `turnpike admin drain`) or full (total-quota, relay ports) server
# sends new clients: the Allocate gets 300 (Try Alternate) with ALTERNATE-SERVER instead of
# 508 (a user-quota refusal stays 486). IP:PORT, at most one per family; a client of a family
# without one gets 508.
# Default: [] (508)
# alternate-server = ["192.0.2.20:3478"]

# The same for clients over TLS and DTLS, who reconnect with TLS/DTLS (RFC 8489 §10): the
# alternate's TLS/DTLS address (coturn's tls-alternate-server). Without it such a client gets
# 508, never a plain STUN/TURN port.
# Default: [] (508)
# tls-alternate-server = ["192.0.2.20:5349"]

# The DNS name in the certificate of the TLS alternates, when it is not the name clients use
# for this server: sent with the 300 as ALTERNATE-DOMAIN (RFC 8489 §10) to TLS and DTLS
# clients that sign with MESSAGE-INTEGRITY-SHA256, which check the alternate's certificate
# against it. In a cluster, a node named by a DNS name in ice-host is checked against that
# name instead. Empty: none.
# Default: "" (none)
# tls-alternate-domain = "turn2.example.org"

# Seconds a drain waits for the last allocation to end before the process exits (0..=86400).
# The process exits as soon as no allocation remains.
# Default: 3600
# drain-timeout = 3600

# Bearer token of the admin API (`turnpike admin`), at least 16 bytes
# (`openssl rand -base64 24`). Unset or empty: no admin API, nothing listens.
# Default: unset (no admin API)
# admin-token = "REPLACE with the output of: openssl rand -base64 24"

# Admin API listen address (IP:PORT). Keep it on loopback or a management network.
# Default: "127.0.0.1:9642"
# admin-listen = "127.0.0.1:9642"

## Cluster: several nodes as one service, on Redis (docs/cluster.md) #############################
# Without redis-url a node is on its own and needs no Redis. With it, a signaling room spans every
# node on that Redis (peers meet whichever node their WebSocket reached).

# Redis URL: redis://[:PASSWORD@]HOST:PORT[/DB], or unix:///PATH. A secret (it may carry the
# password): never logged.
# Default: unset (no cluster)
# redis-url = "redis://127.0.0.1:6379/0"

# This node's name in the cluster, 1 to 64 of A-Z a-z 0-9 . _ - ; unique per node. Unset: a
# random name at each start (fine: a restarted node is a new node).
# Default: unset (random)
# node-id = "turn-eu-1"

# Prefix of every Redis key and channel, so that several clusters may share one Redis.
# Default: "turnpike"
# cluster-prefix = "turnpike"

# Seconds a signaling peer whose connection dropped stays in its room, waiting to resume (on any
# node) before the others see it leave (0..=600). A node that dies takes this long plus at most
# 8 s for its peers to leave the rooms of the other nodes.
# Default: 30
# resume-grace = 30

## Logging #########################################################################################

# Tracing filter: off, error, warn, info, debug, trace, or a directive such as
# "info,turnpike=debug".
# RUST_LOG is used only when log-level is set nowhere (file, environment, flag).
# Default: "info"
# log-level = "info"

# Log line format: "pretty" (for people) or "json" (one object per line, for collectors).
# Default: "pretty"
# log-format = "pretty"
"#;
