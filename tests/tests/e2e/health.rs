//! Health, readiness, the API description and the web UI.

use gt_tests::{AppOptions, TestApp, read};

#[tokio::test]
async fn health_readiness_openapi_and_web_ui() {
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let get = |path: &'static str| {
        let app = &app;
        async move {
            read(
                app.http
                    .get(format!("{}{path}", app.base))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    let (s, ready) = get("/readyz").await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["postgres"], "ok");
    assert_eq!(ready["temporal"], "ok");

    let (s, doc) = get("/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/records/streams",
        "/records/video_clips/{id}",
        "/stream",
        "/stream/{stream_id}/progress",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }

    let resp = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("glowing-telegram"));
    // External-issuer mode publishes no keys of its own.
    assert_eq!(get("/.well-known/jwks.json").await.0, 404);
}
