//! `GET /openapi.json`: the API description, generated from the record catalog (the same
//! definitions that validate requests) and the DTO types' JSON Schemas, so it cannot drift.

use axum::Json;
use axum::Router;
use axum::routing::get;
use gt_store::catalog::{Field, FieldType, RESOURCES, Resource};
use gt_types::api::{ErrorBody, IngestStatus, StreamIngestRequest, WorkflowStarted};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

fn field_schema(field: &Field) -> Value {
    match field.ty {
        FieldType::Text => json!({"type": "string"}),
        FieldType::Enum(values) => json!({"type": "string", "enum": values}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Int => json!({"type": "integer", "format": "int64"}),
        FieldType::Float => json!({"type": "number"}),
        FieldType::Timestamp => json!({"type": "string", "format": "date-time"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Object => json!({"type": "object"}),
        FieldType::Array => json!({"type": "array"}),
        FieldType::StringArray => json!({"type": "array", "items": {"type": "string"}}),
    }
}

fn schema_name(resource: &Resource) -> String {
    let mut s = String::new();
    for part in resource.name.split('_') {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            s.extend(c.to_uppercase());
            s.push_str(chars.as_str());
        }
    }
    s
}

fn resource_schema(resource: &Resource) -> Value {
    let mut props = Map::new();
    for field in resource.all_fields() {
        let mut schema = field_schema(&field);
        if matches!(field.name, "user_id" | "created_at" | "updated_at")
            || resource.server_managed.contains(&field.name)
        {
            schema["readOnly"] = json!(true);
        }
        props.insert(field.name.to_string(), schema);
    }
    let required: Vec<&str> = resource
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({"type": "object", "properties": props, "required": required})
}

fn error_responses() -> Value {
    let err = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let mut m = Map::new();
    for (code, what) in [
        (
            "400",
            "Invalid input: malformed JSON, unknown field, wrong type, bad filter",
        ),
        ("401", "Missing, expired or forged token"),
        ("404", "No such record (or it belongs to another user)"),
        ("413", "Body too large"),
    ] {
        let mut e = err.clone();
        e["description"] = json!(what);
        m.insert(code.into(), e);
    }
    Value::Object(m)
}

pub(crate) fn with_errors(ok_code: &str, ok: Value) -> Value {
    let mut r = error_responses();
    r[ok_code] = ok;
    r
}

pub(crate) fn json_content(schema: Value, description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn resource_paths(resource: &Resource, paths: &mut Map<String, Value>) {
    let name = schema_name(resource);
    let item = json!({"$ref": format!("#/components/schemas/{name}")});
    let page = json!({"type": "object", "required": ["items", "cursor"], "properties": {
        "items": {"type": "array", "items": item},
        "cursor": {"type": ["string", "null"], "description": "Pass back to get the next page; null on the last page"}
    }});
    let tag = json!([resource.name]);
    let base = format!("/records/{}", resource.name);
    paths.insert(base.clone(), json!({
        "get": {
            "tags": tag, "summary": format!("List {}", resource.name),
            "parameters": [
                {"name": "filter", "in": "query", "schema": {"type": "string"},
                 "description": "JSON object: `field` (equals; array = any of; null = absent), `field__ne`, `field__gt`, `field__gte`, `field__lt`, `field__lte`, `field__exists` (bool), `field__contains`, `q` (text search)"},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "From the previous page; the literal `null` or nothing for the first page"},
                {"name": "perPage", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}}
            ],
            "responses": with_errors("200", json_content(page.clone(), "One page"))
        },
        "post": {
            "tags": tag, "summary": format!("Create one record, or many as {{data: [...]}} (all or nothing)"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                item.clone(),
                {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": item}}}
            ]}}}},
            "responses": with_errors("201", json_content(json!({"oneOf": [item.clone(), {"type": "object", "properties": {"items": {"type": "array", "items": item}}}]}), "Created"))
        }
    }));
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    paths.insert(format!("{base}/{{id}}"), json!({
        "get": {"tags": tag, "summary": "Get one record", "parameters": [id_param],
                "responses": with_errors("200", json_content(item.clone(), "The record"))},
        "put": {"tags": tag, "summary": "Merge fields into a record (absent fields are kept)", "parameters": [id_param],
                "requestBody": {"required": true, "content": {"application/json": {"schema": item}}},
                "responses": with_errors("200", json_content(item.clone(), "The updated record"))},
        "delete": {"tags": tag, "summary": "Delete a record", "parameters": [id_param],
                   "responses": with_errors("204", json!({"description": "Deleted"}))}
    }));
    paths.insert(format!("{base}/{{field}}/{{value}}"), json!({
        "get": {"tags": tag, "summary": "All records whose `field` equals `value` (not paged)",
                "parameters": [
                    {"name": "field", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "value", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_errors("200", json_content(page, "All matching records; cursor is null"))}
    }));
}

pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let ingest_req = generator.subschema_for::<StreamIngestRequest>();
    let started = generator.subschema_for::<WorkflowStarted>();
    let status = generator.subschema_for::<IngestStatus>();
    generator.subschema_for::<ErrorBody>();
    let mut schemas = generator.take_definitions(true);
    for r in RESOURCES {
        schemas.insert(schema_name(r), resource_schema(r));
    }

    let mut paths = Map::new();
    for r in RESOURCES {
        resource_paths(r, &mut paths);
    }
    paths.insert("/stream".into(), json!({"post": {
        "tags": ["workflows"],
        "summary": "Start ingesting a stream's recordings (StreamIngest); a duplicate start returns the running one",
        "requestBody": {"required": true, "content": {"application/json": {"schema": ingest_req}}},
        "responses": with_errors("202", json_content(started.to_value(), "Started (200 when it was already running)"))
    }}));
    paths.insert("/stream/{stream_id}/progress".into(), json!({"get": {
        "tags": ["workflows"],
        "summary": "Progress of the stream's latest ingestion (Temporal query)",
        "parameters": [{"name": "stream_id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with_errors("200", json_content(status.to_value(), "Status and progress"))
    }}));
    let stream_param =
        json!({"name": "stream_id", "in": "path", "required": true, "schema": {"type": "string"}});
    let hit = schemars::schema_for!(gt_types::episode::SearchHit);
    paths.insert("/stream/{stream_id}/cancel".into(), json!({"post": {
        "tags": ["workflows"], "summary": "Stop the stream's running ingestion at its next step",
        "parameters": [stream_param],
        "responses": with_errors("202", json!({"description": "Cancel requested"}))
    }}));
    paths.insert("/stream/{stream_id}/episodes".into(), json!({"get": {
        "tags": ["review"], "summary": "The stream's proposed episodes (any review state), in stream order",
        "parameters": [stream_param],
        "responses": with_errors("200", json_content(json!({"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Episodes"}}}}), "Proposals"))
    }}));
    paths.insert("/stream/{stream_id}/review".into(), json!({"post": {
        "tags": ["review"],
        "summary": "Approve, reject or edit proposals in one validated step: the waiting ingestion's `review` update refuses anything but its undecided proposals before writing, then writes edits and decisions in one transaction (409 when no ingestion waits; a refused review changes nothing)",
        "parameters": [stream_param],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
            "approve": {"type": "array", "items": {"type": "string"}},
            "reject": {"type": "array", "items": {"type": "string"}},
            "edits": {"type": "array", "items": {"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                "tracks": {"type": "array"}, "chapters": {"type": "array"}, "tags": {"type": "array"}}}}}}}}},
        "responses": with_errors("202", json_content(json!({"type": "object", "properties": {
            "approved": {"type": "array", "items": {"type": "string"}},
            "rejected": {"type": "array", "items": {"type": "string"}},
            "edited": {"type": "array", "items": {"type": "string"}}}}), "Written; a publish starts per approval"))
    }}));
    paths.insert("/transcripts/edit".into(), json!({"post": {
        "tags": ["review"], "summary": "Correct transcript segments; the clip's search windows are re-embedded",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["clipKey", "segments"], "additionalProperties": false, "properties": {
            "clipKey": {"type": "string"},
            "segments": {"type": "array", "items": {"type": "object", "required": ["idx", "text"], "properties": {"idx": {"type": "integer"}, "text": {"type": "string"}}}}}}}}},
        "responses": with_errors("202", json!({"description": "Saved; re-embedding started"}))
    }}));
    paths.insert("/search".into(), json!({"get": {
        "tags": ["search"], "summary": "Hybrid search over transcript windows (embeddings fused with full-text search by reciprocal rank); hits carry the matched words, their ranges, stream-time offsets and a deep link",
        "parameters": [
            {"name": "q", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 1000}},
            {"name": "stream_id", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}],
        "responses": with_errors("200", json_content(json!({"type": "object", "properties": {"items": {"type": "array", "items": hit.to_value()}, "model": {"type": "string"}, "fusion": {"type": "object", "properties": {"k": {"type": "integer"}, "candidates": {"type": "integer"}, "text_search_config": {"type": "string"}}}}}), "Best windows first"))
    }}));
    paths.insert("/ws".into(), json!({"get": {
        "tags": ["live"], "summary": "WebSocket: TASK_UPDATE {task, old_status} for the token owner's tasks", "security": [],
        "parameters": [{"name": "token", "in": "query", "required": true, "schema": {"type": "string"}}],
        "responses": {"101": {"description": "Switching protocols"}, "401": {"description": "Missing or invalid token"}}
    }}));
    crate::routes::export::openapi_paths(&mut paths);
    crate::routes::publish::openapi_paths(&mut paths);
    crate::routes::youtube_auth::openapi_paths(&mut paths);
    crate::routes::twitch_auth::openapi_paths(&mut paths);
    crate::routes::eventsub::openapi_paths(&mut paths);
    crate::routes::chat::openapi_paths(&mut paths);
    crate::routes::compat::openapi_paths(&mut paths);
    paths.insert(
        "/healthz".into(),
        json!({"get": {"tags": ["health"], "summary": "The process is up", "security": [],
        "responses": {"200": {"description": "OK"}}}}),
    );
    paths.insert("/readyz".into(), json!({"get": {"tags": ["health"], "summary": "Postgres and Temporal answer", "security": [],
        "responses": {"200": {"description": "Ready"}, "503": {"description": "A dependency is down (named in message)"}}}}));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "glowing-telegram API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Turns stream recordings into published episodes. Authenticate with `Authorization: <JWT>` (with or without `Bearer`). Errors are `{\"message\": ...}`."
        },
        "security": [{"jwt": []}],
        "components": {
            "securitySchemes": {"jwt": {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "RS256 JWT (Cognito ID or access token, or the local token `gt up` prints), with or without `Bearer `"}},
            "schemas": schemas
        },
        "paths": paths
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_paths_and_a_schema() {
        let doc = document();
        for r in RESOURCES {
            let name = schema_name(r);
            assert!(doc["components"]["schemas"][&name].is_object(), "{name}");
            assert!(doc["paths"][format!("/records/{}", r.name)]["get"].is_object());
        }
        assert_eq!(schema_name(&gt_store::catalog::VIDEO_CLIPS), "VideoClips");
        // DTO refs resolve into components.
        let req = &doc["paths"]["/stream"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"];
        let name = req.as_str().unwrap().rsplit('/').next().unwrap();
        assert!(doc["components"]["schemas"][name]["properties"]["streamId"].is_object());
    }
}
