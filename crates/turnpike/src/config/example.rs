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

## NAT behaviour discovery (RFC 5780) ##############################################################
# Needs exactly one `listen` address with a specific IP: the primary address, such as
# 192.0.2.1:3478.

# A second IP address of this host, same family as the primary, different from it.
# Setting it enables RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST, RESPONSE-ORIGIN).
# Default: unset (RFC 5780 off)
# alternate-ip = "192.0.2.2"

# A second port, different from the primary port. Without it only the IP changes.
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
