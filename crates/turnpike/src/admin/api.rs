//! The admin API's routes (see the table in [`super`]). Handlers lock one worker's core at a
//! time, briefly, as the relay path does.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use turn::relay::sessions::SessionInfo;

use super::bearer::{self, Token};
use super::wire::{Draining, Failure, Info, Kick, Kicked, Reload, Session};
use crate::cluster::fleet::NodeRecord;
use crate::control::Control;

/// The routes, every one behind the bearer token.
pub fn router(control: Arc<Control>, token: Token) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/cluster", get(cluster))
        .route("/v1/sessions", get(sessions))
        .route("/v1/kick", post(kick))
        .route("/v1/drain", post(drain))
        .route("/v1/reload", post(reload))
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "no such route") })
        .with_state(control)
        // Outermost: an unauthenticated caller learns nothing, not even which routes exist.
        .layer(axum::middleware::from_fn_with_state(token, bearer::require))
}

fn failure(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(Failure {
            error: error.into(),
        }),
    )
        .into_response()
}

/// `GET /v1/info`.
async fn info(State(control): State<Arc<Control>>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: control.started().elapsed().as_secs(),
        workers: control.workers().len(),
        allocations: control.allocations(),
        draining: control.draining(),
    })
}

/// `GET /v1/cluster`: every node of the cluster as this node last read it from Redis (its
/// presence key's record), ordered by id; `[]` without a cluster.
async fn cluster(State(control): State<Arc<Control>>) -> Json<Vec<NodeRecord>> {
    let mut nodes = control.cluster_nodes();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Json(nodes)
}

/// `GET /v1/sessions`.
async fn sessions(State(control): State<Arc<Control>>) -> Json<Vec<Session>> {
    Json(control.sessions().await.iter().map(session).collect())
}

/// The JSON of one allocation.
fn session(info: &SessionInfo) -> Session {
    let t = &info.five_tuple;
    Session {
        user: info.username.clone(),
        realm: info.realm.clone(),
        client: t.client.to_string(),
        server: t.server.to_string(),
        transport: t.transport.name().to_owned(),
        relays: info
            .relays
            .iter()
            .map(|r| r.advertised.to_string())
            .collect(),
        age_secs: info.age.as_secs(),
        expires_in_secs: info.remaining.as_secs(),
        permissions: info.permissions,
        channels: info.channels,
        to_peer_packets: info.traffic.to_peer.packets,
        to_peer_bytes: info.traffic.to_peer.bytes,
        to_client_packets: info.traffic.to_client.packets,
        to_client_bytes: info.traffic.to_client.bytes,
    }
}

/// `POST /v1/kick`.
async fn kick(State(control): State<Arc<Control>>, Json(request): Json<Kick>) -> Response {
    let kicked = match (&request.user, &request.client) {
        (Some(user), None) => control.kick_user(user).await,
        (None, Some(client)) => match client.parse::<SocketAddr>() {
            Ok(client) => control.kick_client(client).await,
            Err(_) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    format!("`{client}` is not IP:PORT"),
                )
            }
        },
        _ => {
            return failure(
                StatusCode::BAD_REQUEST,
                "give exactly one of `user` and `client`",
            )
        }
    };
    Json(Kicked { kicked }).into_response()
}

/// `POST /v1/drain`.
async fn drain(State(control): State<Arc<Control>>) -> Response {
    // Starting a drain asks every worker and waits (bounded): off the runtime's threads.
    let outcome = tokio::task::spawn_blocking(move || {
        let started = control.begin_drain("admin");
        Draining {
            started,
            allocations: control.allocations(),
        }
    })
    .await;
    match outcome {
        Ok(draining) => Json(draining).into_response(),
        Err(_) => failure(StatusCode::INTERNAL_SERVER_ERROR, "the drain did not start"),
    }
}

/// `POST /v1/reload`: 200 when applied, 422 with every problem when the file is invalid.
async fn reload(State(control): State<Arc<Control>>) -> Response {
    let outcome = tokio::task::spawn_blocking(move || control.reload("admin")).await;
    match outcome {
        Ok(Ok(done)) => Json(Reload {
            reloaded: true,
            problems: Vec::new(),
            restart_needed: done.restart_needed,
            users: done.users,
        })
        .into_response(),
        Ok(Err(error)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(Reload {
                reloaded: false,
                problems: error.problems,
                restart_needed: Vec::new(),
                users: 0,
            }),
        )
            .into_response(),
        Err(_) => failure(StatusCode::INTERNAL_SERVER_ERROR, "the reload failed"),
    }
}
