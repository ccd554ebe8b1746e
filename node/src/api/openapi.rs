//! The OpenAPI 3.1 document of the node's HTTP API, made from the routes themselves: each
//! handler's `#[utoipa::path]` documents its operation and `routes!` registers it at that path,
//! so the router and the document cannot disagree; the bodies' schemas come from the wire types
//! in `sessync_proto`. Served at `GET /v1/openapi.json` and committed as `docs/openapi.json`
//! (a test fails when the two differ: `SESSYNC_WRITE_OPENAPI=1` rewrites the file).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use sessync_proto::federation::SIGNATURE_HEADER;
use sessync_proto::wire::CLUSTER_AUTH_HEADER;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessync",
        description = "A replicated, multi-site user-session service (shared/spec/api-v1.md). \
            Errors are `{\"error\": {code, message, field?}}`; every answer to an \
            authenticated caller names the leader in `x-sessync-leader` when one is known.",
        license(name = "see the repository"),
    ),
    modifiers(&Security),
    tags(
        (name = "sessions", description = "What apps call (role app): create, validate, touch, end, list, verify, invalidate, events"),
        (name = "admin", description = "Role admin: config and policy, active users, audit"),
        (name = "cluster", description = "Role admin: Raft membership, status, snapshots, digests"),
        (name = "federation", description = "What peer sites send, signed with the shared secret; and the operators' status"),
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "internal", description = "Between the nodes of one site, behind the cluster proof"),
    )
)]
struct ApiDoc;

/// The three ways a caller proves itself.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <api key>`; the key's role is app or admin",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "cluster_proof",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CLUSTER_AUTH_HEADER,
                "HMAC-SHA256 under the cluster secret over the request (docs/ARCHITECTURE.md)",
            ))),
        );
        c.add_security_scheme(
            "peer_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                SIGNATURE_HEADER,
                "HMAC-SHA256 under the shared federation secret, with the site, timestamp and \
                 nonce headers (docs/federation.md)",
            ))),
        );
    }
}

/// The document.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::with_openapi(ApiDoc::openapi());
    for part in super::routes() {
        doc = doc.merge(part);
    }
    doc.into_openapi()
}

/// The document as the node serves it and docs/openapi.json holds it.
pub(crate) fn json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"the document does not serialize: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use utoipa::openapi::path::Operation;
    use utoipa::openapi::RefOr;

    use super::*;
    use sessync_proto::federation::PeerOpKind;
    use sessync_proto::wire::{
        APPEND_PATH, AUDIT_PATH, HELLO_PATH, READ_INDEX_PATH, SNAPSHOT_PATH, VOTE_PATH,
    };

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every operation of the document, with its path and method.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, &'static str, &Operation)> {
        let mut out = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if let Some(op) = op {
                    out.push((path.clone(), method, op));
                }
            }
        }
        out
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let file = repo().join("docs/openapi.json");
        let generated = json();
        if std::env::var_os("SESSYNC_WRITE_OPENAPI").is_some() {
            std::fs::write(&file, &generated).expect("docs/openapi.json is writable");
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the API the node serves; rewrite it with\n  \
             SESSYNC_WRITE_OPENAPI=1 cargo test --release -p sessync-node --lib openapi\n\
             and review the diff"
        );
    }

    #[test]
    fn every_operation_documents_its_error_answers() {
        let doc = document();
        let ops = operations(&doc);
        assert!(ops.len() >= 30, "{} operations", ops.len());
        let open = ["/healthz", "/readyz", "/v1/openapi.json"];
        for (path, method, op) in ops {
            let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            assert!(
                statuses.iter().any(|s| s.starts_with('2')),
                "{method} {path}: no success"
            );
            if open.contains(&path.as_str()) {
                continue;
            }
            // Anything that needs a key, a proof or a signature says what a stranger gets.
            assert!(
                statuses.contains(&"401"),
                "{method} {path}: no 401 in {statuses:?}"
            );
            assert!(
                op.security.as_ref().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no security requirement"
            );
            for (status, answer) in &op.responses.responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let RefOr::T(r) = answer else { continue };
                    assert!(
                        !r.description.is_empty(),
                        "{method} {path}: {status} has no description"
                    );
                }
            }
        }
    }

    #[test]
    fn the_wire_paths_are_the_served_paths() {
        let doc = document();
        for path in [
            APPEND_PATH,
            VOTE_PATH,
            SNAPSHOT_PATH,
            READ_INDEX_PATH,
            AUDIT_PATH,
            HELLO_PATH,
            PeerOpKind::Verify.path(),
            PeerOpKind::Invalidate.path(),
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} is not served");
        }
    }

    /// The document lists every route because routes are only added with `routes!`: a plain
    /// `.route(` in the API would serve a path the document does not show.
    #[test]
    fn no_route_bypasses_the_document() {
        let dir = repo().join("node/src/api");
        // Spelled apart, so this test does not find itself.
        let (route, nest) = ([".", "route("].concat(), [".", "nest("].concat());
        for entry in std::fs::read_dir(&dir).expect("node/src/api") {
            let path = entry.expect("a file").path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                assert!(
                    !code.contains(&route) && !code.contains(&nest),
                    "{}:{}: a route added outside `routes!` is not in the OpenAPI document",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}
