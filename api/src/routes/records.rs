//! `/records/{resource}`: the generic, user-scoped CRUD the front end's data provider speaks
//! (`reference/anchor-frontend.md` §2.2).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gt_store::catalog::{self, PROFILES, Resource, STREAM_WIDGETS};
use gt_store::{ListQuery, StoreError};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, PathParams, QueryPairs};

/// The alias the front end uses for the caller's own profile.
pub const MY_PROFILE: &str = "my-profile";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/records/{resource}", get(list).post(create))
        .route(
            "/records/{resource}/{id}",
            get(get_one).put(update).delete(remove),
        )
        .route("/records/{resource}/{field}/{value}", get(related))
}

fn resource(name: &str) -> ApiResult<&'static Resource> {
    catalog::resource(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown resource '{name}' (known: {})",
            catalog::RESOURCES
                .iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Profiles are one per user: `my-profile` names the caller's, whose id is the user id.
fn record_id<'a>(resource: &Resource, id: &'a str, user: &'a AuthUser) -> &'a str {
    if resource.name == PROFILES.name && id == MY_PROFILE {
        &user.user_id
    } else {
        id
    }
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(name): PathParams<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let resource = resource(&name)?;
    let per_page =
        match query.one("perPage")? {
            None | Some("") => None,
            Some(s) => Some(s.parse::<i64>().map_err(|_| {
                ApiError::BadRequest(format!("perPage must be an integer, got {s:?}"))
            })?),
        };
    let q = ListQuery {
        filter: query.one("filter")?.map(str::to_string),
        cursor: query.one("cursor")?.map(str::to_string),
        per_page,
    };
    let page = state.records.list(&user.user_id, resource, &q).await?;
    Ok(Json(json!({"items": page.items, "cursor": page.cursor})))
}

async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams((name, id)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let resource = resource(&name)?;
    let rid = record_id(resource, &id, &user);
    match state.records.get(&user.user_id, resource, rid).await {
        Ok(v) => Ok(Json(v)),
        // A profile exists implicitly: before the first save it is just its id.
        Err(StoreError::NotFound(_)) if resource.name == PROFILES.name && rid == user.user_id => {
            Ok(Json(json!({"id": user.user_id, "user_id": user.user_id})))
        }
        Err(e) => Err(e.into()),
    }
}

async fn related(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams((name, field, value)): PathParams<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let resource = resource(&name)?;
    let items = state
        .records
        .related(&user.user_id, resource, &field, &value)
        .await?;
    Ok(Json(json!({"items": items, "cursor": null})))
}

/// `POST` takes one record, or many as `{"data": [...]}` (the front end's bulk create) or a
/// bare array (the original API's bulk form). Many are created all-or-nothing.
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let resource = resource(&name)?;
    let (mut bodies, bulk) = match body {
        Value::Array(items) => (items, true),
        Value::Object(mut map)
            if map.len() == 1 && map.get("data").is_some_and(Value::is_array) =>
        {
            let Some(Value::Array(items)) = map.remove("data") else {
                unreachable!()
            };
            (items, true)
        }
        other @ Value::Object(_) => (vec![other], false),
        _ => {
            return Err(ApiError::BadRequest(
                "body must be a record object, {\"data\": [records]} or an array of records".into(),
            ));
        }
    };
    for body in &mut bodies {
        crate::routes::compat::localize_times(&state, &user, resource, body).await?;
        crate::routes::compat::fill_create_defaults(resource, body);
        if resource.name == STREAM_WIDGETS.name {
            crate::widgets::check_write(body, None)?;
        }
    }
    let created = state
        .records
        .create(&user.user_id, resource, &bodies)
        .await?;
    if resource.name == STREAM_WIDGETS.name {
        for record in &created {
            if let Some(id) = record["id"].as_str() {
                crate::widgets::after_write(&state, &user.user_id, id).await?;
            }
        }
    }
    let body = if bulk {
        json!({"items": created})
    } else {
        created.into_iter().next().unwrap_or(Value::Null)
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams((name, id)): PathParams<(String, String)>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let resource = resource(&name)?;
    let rid = record_id(resource, &id, &user).to_string();
    // The front end's edit form sends the record back, id included; for `my-profile` that id
    // is the user id, which is the same record.
    let mut patch = if resource.name == PROFILES.name && id == MY_PROFILE {
        strip_id(patch)
    } else {
        patch
    };
    crate::routes::compat::localize_times(&state, &user, resource, &mut patch).await?;
    if resource.name == STREAM_WIDGETS.name {
        let stored = state.widgets.widget(&user.user_id, &rid).await?;
        crate::widgets::check_write(&mut patch, stored.as_ref())?;
    }
    let record = if resource.name == PROFILES.name && rid == user.user_id {
        state
            .records
            .upsert(&user.user_id, resource, &rid, &patch)
            .await?
    } else {
        state
            .records
            .update(&user.user_id, resource, &rid, &patch)
            .await?
    };
    if resource.name == STREAM_WIDGETS.name {
        crate::widgets::after_write(&state, &user.user_id, &rid).await?;
    }
    Ok(Json(record))
}

fn strip_id(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.remove("id");
    }
    v
}

async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams((name, id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    let resource = resource(&name)?;
    let rid = record_id(resource, &id, &user);
    state.records.delete(&user.user_id, resource, rid).await?;
    if resource.name == STREAM_WIDGETS.name
        && let Err(e) = state.workflows.stop_widget(&user.user_id, rid).await
    {
        // The timer's next activity finds the widget gone and ends it anyway.
        tracing::warn!("widget {rid} deleted; its timer not stopped now: {e}");
    }
    Ok(StatusCode::NO_CONTENT)
}
