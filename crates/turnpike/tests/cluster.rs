//! Several `turnpike serve` nodes on one real `redis-server` (docs/cluster.md): signaling rooms
//! span nodes, frames keep their order and their `from`, limits hold fleet-wide, a peer resumes
//! through another node, a killed node's peers leave within the stated bound and leave nothing
//! in Redis, and Redis going away leaves each node serving its own rooms until it is back.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stun::Class;

mod common;

use common::redis_server::RedisServer;
use common::signaling_client::Client;
use common::Server;

/// The resume window the nodes run with, seconds (short, so that a killed node's peers leave
/// soon; the resume test sets its own).
const GRACE: &str = "2";
/// What a killed node's peers take to leave, at most: its presence key's lifetime (6 s), one
/// heartbeat to notice (2 s) and the resume window (GRACE), as docs/cluster.md states; with a
/// wide margin for a loaded machine.
const NODE_LOSS_BOUND: Duration = Duration::from_secs(6 + 2 + 2 + 12);

/// The fleet's shared REST secret (docs/cluster.md: nodes share it, so that a credential
/// handed out by one works on all).
const REST_SECRET: &str = "fleet-rest-secret-0123456789";

/// A node named `id` on `redis`, with `args` added (and the resume window [`GRACE`] unless
/// `args` sets one).
fn node(redis: &RedisServer, id: &str, args: &[&str]) -> Server {
    let url = redis.url();
    let mut all = vec!["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    all.extend([
        "--relay-ip",
        "127.0.0.1",
        "--redis-url",
        &url,
        "--node-id",
        id,
    ]);
    all.extend([
        "--rest-secrets",
        REST_SECRET,
        "--allowed-peers",
        "127.0.0.1/32",
    ]);
    // The tests poll the ICE server list, and read the fleet's metrics on the HTTP port.
    all.extend(["--credential-rate", "10000", "--metrics-on-http", "true"]);
    if !args.contains(&"--resume-grace") {
        all.extend(["--resume-grace", GRACE]);
    }
    all.extend(args);
    let server = Server::spawn(&all, |command| {
        command.env_remove("TURNPIKE_SIGNALING_SECRET");
    });
    wait_health(&server, "ok");
    server
}

/// `GET path` from `server`'s HTTP listener: the body.
fn get(server: &Server, path: &str) -> String {
    let mut tcp = TcpStream::connect(server.address("http")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    body.to_owned()
}

/// `GET /healthz`: the body.
fn healthz(server: &Server) -> String {
    get(server, "/healthz")
}

/// Waits (up to 20 s) until `/healthz` of `server` starts with `want`.
fn wait_health(server: &Server, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = healthz(server);
        if body.starts_with(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "healthz stayed `{body}`, want `{want}`"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client of `server`'s signaling WebSocket whose reads wait up to `timeout`.
fn client(server: &Server, timeout: Duration) -> Client {
    let client = Client::open(server.address("http"));
    client.0.get_ref().set_read_timeout(Some(timeout)).unwrap();
    client
}

/// Joins `room` and returns (peer id, the `joined` frame).
fn join(client: &mut Client, room: &str) -> (String, Value) {
    let joined = client.join(room, None);
    assert_eq!(joined["type"], "joined", "{joined}");
    (joined["id"].as_str().unwrap().to_owned(), joined)
}

#[test]
fn peers_on_two_nodes_meet_in_one_room_with_frames_in_order_and_limits_fleet_wide() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &["--room-capacity", "2"]);
    let b = node(&redis, "b", &["--room-capacity", "2"]);
    let wait = Duration::from_secs(10);
    let mut one = client(&a, wait);
    let (one_id, joined) = join(&mut one, "lobby");
    assert_eq!(joined["peers"], json!([]));
    let mut two = client(&b, wait);
    let (two_id, joined) = join(&mut two, "lobby");
    assert_eq!(
        joined["peers"],
        json!([one_id]),
        "the peer on node a is in the room"
    );
    let seen = one.recv();
    assert_eq!(
        (seen["type"].as_str(), seen["id"].as_str()),
        (Some("peer-joined"), Some(two_id.as_str()))
    );

    // Directed frames across nodes, in order, with the server-stamped `from` and `data` as sent
    // (80: within the rate limit's burst of 100).
    for i in 0..80 {
        let data = json!({ "n": i, "text": "line\nbreak \u{e9}" });
        two.send_json(json!({ "type": "message", "to": one_id, "data": data }));
    }
    for i in 0..80 {
        let frame = one.recv();
        assert_eq!(frame["type"], "message", "{frame}");
        assert_eq!(frame["from"], json!(two_id));
        assert_eq!(
            frame["data"],
            json!({ "n": i, "text": "line\nbreak \u{e9}" })
        );
    }
    one.send_json(json!({ "type": "offer", "to": two_id, "data": { "sdp": "v=0" } }));
    let offer = two.recv();
    assert_eq!(
        (offer["type"].as_str(), offer["from"].as_str()),
        (Some("offer"), Some(one_id.as_str()))
    );
    assert_eq!(offer["data"], json!({ "sdp": "v=0" }));

    // The capacity of 2 holds across nodes: a third peer, on either node, is refused.
    for server in [&a, &b] {
        let mut three = client(server, wait);
        three.send_json(json!({ "type": "join", "room": "lobby" }));
        let refused = three.recv();
        assert_eq!(
            (refused["type"].as_str(), refused["code"].as_str()),
            (Some("error"), Some("room-full")),
            "{refused}"
        );
    }

    // Leaving on node b is seen on node a.
    two.send_json(json!({ "type": "leave" }));
    let left = one.recv();
    assert_eq!(
        (left["type"].as_str(), left["id"].as_str()),
        (Some("peer-left"), Some(two_id.as_str()))
    );
}

#[test]
fn a_killed_node_s_peers_leave_the_room_in_time_and_nothing_stays_in_redis() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let mut b = node(&redis, "b", &[]);
    let mut one = client(&a, NODE_LOSS_BOUND);
    let (_, _) = join(&mut one, "lobby");
    let mut two = client(&b, NODE_LOSS_BOUND);
    let (two_id, _) = join(&mut two, "lobby");
    assert_eq!(one.recv()["type"], "peer-joined");
    assert_eq!(redis.keys("turnpike:room:*"), ["turnpike:room:lobby"]);

    let killed = Instant::now();
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let left = one.recv();
    let took = killed.elapsed();
    assert_eq!(
        (left["type"].as_str(), left["id"].as_str()),
        (Some("peer-left"), Some(two_id.as_str())),
        "{left}"
    );
    println!("peer of the killed node left after {took:?}");
    assert!(took < NODE_LOSS_BOUND, "{took:?}");
    assert_eq!(redis.keys("turnpike:node:*"), ["turnpike:node:a"]);

    // The last peer leaves: its home drops the room's claim at its next heartbeat.
    one.send_json(json!({ "type": "leave" }));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !redis.keys("turnpike:room:*").is_empty() {
        assert!(Instant::now() < deadline, "{:?}", redis.keys("*"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn when_a_room_s_home_dies_its_peers_elsewhere_are_told_to_reconnect_and_the_room_moves() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut one = client(&a, NODE_LOSS_BOUND);
    join(&mut one, "lobby");
    let mut two = client(&b, NODE_LOSS_BOUND);
    join(&mut two, "lobby");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let (code, _) = two.recv_close();
    assert_eq!(
        code.map(u16::from),
        Some(1012),
        "service restart: reconnect"
    );
    // Reconnecting through node b: the room's new home is b.
    let mut again = client(&b, Duration::from_secs(10));
    let (_, joined) = join(&mut again, "lobby");
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(redis.keys("turnpike:room:*"), ["turnpike:room:lobby"]);
}

#[test]
fn a_peer_resumes_through_another_node_and_gets_what_was_queued_once() {
    let redis = RedisServer::start();
    let grace = ["--resume-grace", "30"];
    let a = node(&redis, "a", &grace);
    let b = node(&redis, "b", &grace);
    let c = node(&redis, "c", &grace);
    let wait = Duration::from_secs(10);
    let mut one = client(&a, wait);
    let (one_id, _) = join(&mut one, "lobby");
    let mut two = client(&b, wait);
    let (two_id, joined) = join(&mut two, "lobby");
    let resume = joined["resume"].as_str().unwrap().to_owned();
    assert_eq!(one.recv()["type"], "peer-joined");
    // The socket on node b drops without a close frame.
    drop(two);
    // Frames to the away peer wait for it. (The home may not have heard of the drop yet; a
    // frame sent before that is delivered on the old socket or queued, either way once.)
    std::thread::sleep(Duration::from_millis(500));
    one.send_json(json!({ "type": "message", "to": two_id, "data": "while away" }));
    let mut back = client(&c, wait);
    back.send_json(json!({ "type": "join", "room": "lobby", "resume": resume }));
    let joined = back.recv();
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(
        (joined["id"].as_str(), joined["resumed"].as_bool()),
        (Some(two_id.as_str()), Some(true))
    );
    let queued = back.recv();
    assert_eq!(
        (queued["from"].as_str(), queued["data"].as_str()),
        (Some(one_id.as_str()), Some("while away")),
        "{queued}"
    );
    // Exactly once: the next frame is the one sent after the resume.
    one.send_json(json!({ "type": "message", "to": two_id, "data": "after" }));
    assert_eq!(back.recv()["data"], "after");
    // The other peer saw no leave.
    back.send_json(json!({ "type": "message", "to": one_id, "data": "hello" }));
    let frame = one.recv();
    assert_eq!(
        (frame["type"].as_str(), frame["data"].as_str()),
        (Some("message"), Some("hello")),
        "{frame}"
    );
}

#[test]
fn without_redis_each_node_serves_its_own_rooms_and_the_cluster_comes_back() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    redis.stop();
    wait_health(&a, "degraded");
    wait_health(&b, "degraded");
    let wait = Duration::from_secs(10);
    let mut one = client(&a, wait);
    let (one_id, _) = join(&mut one, "local");
    let mut two = client(&a, wait);
    join(&mut two, "local");
    assert_eq!(one.recv()["type"], "peer-joined");
    two.send_json(json!({ "type": "message", "to": one_id, "data": "still here" }));
    assert_eq!(one.recv()["data"], "still here");

    redis.restart();
    wait_health(&a, "ok");
    wait_health(&b, "ok");
    // Both nodes announce themselves again within a heartbeat.
    let deadline = Instant::now() + Duration::from_secs(15);
    while redis.keys("turnpike:node:*").len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", redis.keys("*"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut three = client(&a, wait);
    let (three_id, _) = join(&mut three, "again");
    let mut four = client(&b, wait);
    let (_, joined) = join(&mut four, "again");
    assert_eq!(joined["peers"], json!([three_id]));
}

/// The `turn:` entry of `GET /api/ice-servers` from `server`: (urls, username, credential).
fn turn_entry(server: &Server) -> (Vec<String>, String, String) {
    let body: Value = serde_json::from_str(&get(server, "/api/ice-servers")).unwrap();
    let turn = body["iceServers"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .find(|s| s["username"].is_string())
        .unwrap_or_else(|| panic!("no TURN entry: {body}"))
        .clone();
    let urls = turn["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    let text = |key: &str| turn[key].as_str().unwrap().to_owned();
    (urls, text("username"), text("credential"))
}

#[test]
fn the_ice_servers_name_the_least_loaded_nodes_and_one_credential_works_on_all() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let (a_udp, b_udp) = (a.address("udp"), b.address("udp"));
    let first_url = |server: &Server| turn_entry(server).0[0].clone();
    let url_of = |addr: std::net::SocketAddr| format!("turn:{addr}?transport=udp");
    // Equal loads: ties go by node id, the same on every node.
    let deadline = Instant::now() + Duration::from_secs(20);
    while first_url(&b) != url_of(a_udp) {
        assert!(Instant::now() < deadline, "{:?}", turn_entry(&b));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two allocations on node a make node b the least loaded, as seen from node a too.
    let (_, username, credential) = turn_entry(&a);
    for _ in 0..2 {
        assert_eq!(
            common::allocate(a_udp, &username, &credential),
            Class::Success
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while first_url(&a) != url_of(b_udp) {
        assert!(Instant::now() < deadline, "{:?}", turn_entry(&a));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (urls, username, credential) = turn_entry(&a);
    assert!(
        urls.contains(&url_of(a_udp)),
        "the second node to fall back to: {urls:?}"
    );
    // The credential node a handed out works on node b: the fleet shares its REST secret.
    assert_eq!(
        common::allocate(b_udp, &username, &credential),
        Class::Success
    );
    // Any node's metrics show the whole fleet: node b sees node a's two allocations (and,
    // within a heartbeat, its own one).
    let want = [
        "turnpike_cluster_up 1",
        "turnpike_cluster_nodes 2",
        "turnpike_cluster_node_allocations{node=\"a\"} 2",
        "turnpike_cluster_node_allocations{node=\"b\"} 1",
        "turnpike_cluster_node_open{node=\"a\"} 1",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = get(&b, "/metrics");
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|line| !metrics.lines().any(|l| l == *line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {missing:?} in:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_node_sends_new_clients_to_a_node_with_room_that_it_learnt_from_redis() {
    let redis = RedisServer::start();
    let b = node(&redis, "b", &[]);
    let a = node(&redis, "a", &["--total-quota", "1"]);
    let (a_udp, b_udp) = (a.address("udp"), b.address("udp"));
    let (_, username, credential) = turn_entry(&a);
    assert_eq!(
        common::allocate(a_udp, &username, &credential),
        Class::Success
    );
    // Node a is full; within a heartbeat it knows node b has room, and sends new clients there:
    // 300 Try Alternate with ALTERNATE-SERVER b (RFC 8656 §7.2, RFC 8489 §14.15), which
    // `turnpike check` follows.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .args(["check", "--json", &format!("turn:{a_udp}")])
            .args(["--user", &username, "--password", &credential])
            .args(["--count", "3", "--interval", "5"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let result = &report["results"][0];
        // Both of check's allocations find node a full.
        if result["facts"]["redirected_to"] == json!([b_udp.to_string(), b_udp.to_string()]) {
            assert_eq!(output.status.code(), Some(0), "{result:#}");
            break;
        }
        assert!(Instant::now() < deadline, "never redirected: {result:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn join_tokens_are_checked_by_the_room_s_home_whichever_node_the_peer_reached() {
    const SECRET: &str = "fleet-signaling-secret-0123";
    let redis = RedisServer::start();
    let tokens = ["--signaling-secret", SECRET];
    let a = node(&redis, "a", &tokens);
    let b = node(&redis, "b", &tokens);
    let token = |room: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .args(["token", "--room", room, "--secret", SECRET])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let wait = Duration::from_secs(10);
    let mut one = client(&a, wait);
    let joined = one.join("lobby", Some(&token("lobby")));
    assert_eq!(joined["type"], "joined", "{joined}");
    // Through node b, whose room's home is node a: a token for another room is refused by
    // the home, and the refusal (error, then close 1008) travels back through node b.
    let mut two = client(&b, wait);
    two.send_json(json!({ "type": "join", "room": "lobby", "token": token("elsewhere") }));
    let (code, texts) = two.recv_close();
    assert_eq!(code.map(u16::from), Some(1008), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("bad-token")), "{texts:?}");
    let mut three = client(&b, wait);
    let joined = three.join("lobby", Some(&token("lobby")));
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["peers"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_admin_api_of_any_node_lists_every_node_of_the_cluster() {
    const TOKEN: &str = "cluster-admin-token-0123456789";
    let redis = RedisServer::start();
    let admin = ["--admin-token", TOKEN, "--admin-listen", "127.0.0.1:0"];
    let a = node(&redis, "a", &admin);
    let _b = node(&redis, "b", &[]);
    let list = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_turnpike"));
        command
            .args(["admin", "--url", &format!("http://{}", a.address("admin"))])
            .env("TURNPIKE_ADMIN_TOKEN", TOKEN)
            .env_remove("TURNPIKE_CONFIG")
            .env_remove("TURNPIKE_ADMIN_URL");
        if json {
            command.arg("--json");
        }
        let output = command.arg("cluster").output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    // Both nodes appear within a heartbeat or two, as their presence keys describe them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let nodes = loop {
        let nodes: Value = serde_json::from_str(&list(true)).unwrap();
        let described = |n: &Value| n["turn"].is_object();
        if nodes
            .as_array()
            .is_some_and(|n| n.len() == 2 && n.iter().all(described))
        {
            break nodes;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (nodes[0]["id"].as_str(), nodes[1]["id"].as_str()),
        (Some("a"), Some("b"))
    );
    assert_eq!(nodes[0]["turn"]["host"], "127.0.0.1", "{nodes}");
    assert_eq!(nodes[0]["turn"]["port"], a.address("udp").port(), "{nodes}");
    let text = list(false);
    assert!(text.starts_with("node\tallocations\topen"), "{text}");
    assert!(text.contains("\nb\t0\tyes\t"), "{text}");
}
