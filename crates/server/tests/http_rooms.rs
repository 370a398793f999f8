//! Rooms, members and the permission table enforced over HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use confcast_policy::{allows, Action, Role};
use serde_json::{json, Value};

/// A room with one user of each role, and a stranger.
struct Cast {
    host: String,
    admin: String,
    member: String,
    stranger: String,
    /// A second plain member, the target of removals and promotions.
    other: String,
}

impl Cast {
    async fn new(app: &TestApp) -> Cast {
        Cast {
            host: app.register("hana").await.0,
            admin: app.register("adam").await.0,
            member: app.register("mona").await.0,
            stranger: app.register("sven").await.0,
            other: app.register("mika").await.0,
        }
    }

    /// A fresh room hosted by `hana` with `adam` as admin and `mona` and `mika`
    /// as members.
    async fn room(&self, app: &TestApp) -> String {
        let created = app.post("/api/v1/rooms", &self.host, json!({"title": "Studio"})).await;
        assert_eq!(created.status, StatusCode::CREATED);
        let room = created.body["id"].as_str().unwrap().to_owned();
        app.join_by_link(&self.host, &room, &self.admin).await;
        app.join_by_link(&self.host, &room, &self.member).await;
        app.join_by_link(&self.host, &room, &self.other).await;
        let promote =
            app.call(Method::PUT, &format!("/api/v1/rooms/{room}/members/adam"), Some(&self.host), Some(json!({"role": "admin"}))).await;
        assert_eq!(promote.status, StatusCode::OK);
        room
    }

    fn token(&self, role: Role) -> Option<&str> {
        match role {
            Role::Host => Some(&self.host),
            Role::Admin => Some(&self.admin),
            Role::Member => Some(&self.member),
            Role::Stranger => Some(&self.stranger),
            Role::Anonymous => None,
        }
    }
}

/// The room as its host sees it, to check nothing changed after a refusal.
async fn snapshot(app: &TestApp, cast: &Cast, room: &str) -> Value {
    let mut view = app.get(&format!("/api/v1/rooms/{room}"), &cast.host).await.body;
    view.as_object_mut().unwrap().remove("your_role");
    view
}

/// Every room action the HTTP API offers, tried by every role on a fresh
/// room; allowed ones succeed, refused ones answer 401/403 and change nothing.
#[tokio::test]
async fn every_room_action_by_every_role_follows_the_policy() {
    let app = test_app().await;
    let cast = Cast::new(&app).await;
    let outsider = app.register("otto").await.0;
    let actions = [
        Action::ViewRoom,
        Action::Invite,
        Action::CreateInviteLink,
        Action::RemoveMember,
        Action::Rename,
        Action::DeleteRoom,
        Action::NameAdmins,
        Action::ManageIngest,
    ];
    for action in actions {
        for role in Role::ALL {
            let room = cast.room(&app).await;
            let before = snapshot(&app, &cast, &room).await;
            let token = cast.token(role);
            let base = format!("/api/v1/rooms/{room}");
            let reply = match action {
                Action::ViewRoom => app.call(Method::GET, &base, token, None).await,
                Action::Invite => {
                    app.call(Method::POST, &format!("{base}/invitations"), token, Some(json!({"username": "otto"}))).await
                }
                Action::CreateInviteLink => app.call(Method::POST, &format!("{base}/invite-links"), token, Some(json!({}))).await,
                Action::RemoveMember => app.call(Method::DELETE, &format!("{base}/members/mika"), token, None).await,
                Action::Rename => app.call(Method::PATCH, &base, token, Some(json!({"title": "Renamed"}))).await,
                Action::DeleteRoom => app.call(Method::DELETE, &base, token, None).await,
                Action::NameAdmins => {
                    app.call(Method::PUT, &format!("{base}/members/mika"), token, Some(json!({"role": "admin"}))).await
                }
                Action::ManageIngest => app.call(Method::POST, &format!("{base}/ingest-keys"), token, Some(json!({"name": "Studio"}))).await,
                _ => unreachable!("not in the list above"),
            };
            let what = format!("{action:?} by {role}: {}", reply.text);
            if allows(role, action) {
                assert!(reply.status.is_success(), "{what}");
            } else {
                let expected = if role == Role::Anonymous { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                assert_eq!(reply.status, expected, "{what}");
                assert_eq!(snapshot(&app, &cast, &room).await, before, "state changed after a refusal: {what}");
                if action == Action::Invite {
                    let pending = app.get("/api/v1/invitations", &outsider).await.body;
                    let to_this_room = pending["invitations"].as_array().unwrap().iter().filter(|i| i["room"]["id"] == room.as_str()).count();
                    assert_eq!(to_this_room, 0, "{what}");
                }
            }
        }
    }
}

#[tokio::test]
async fn rooms_can_be_created_renamed_and_deleted_but_not_the_personal_one() {
    let app = test_app().await;
    let (alice, personal) = app.register("alice").await;
    let created = app.post("/api/v1/rooms", &alice, json!({"title": "  Evening show  "})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["title"], "Evening show");
    assert_eq!(created.body["your_role"], "host");
    assert_eq!(created.body["members"][0]["username"], "alice");
    let id = created.body["id"].as_str().unwrap();

    let renamed = app.call(Method::PATCH, &format!("/api/v1/rooms/{id}"), Some(&alice), Some(json!({"title": "Late show"}))).await;
    assert_eq!(renamed.body["title"], "Late show");
    let me = app.get("/api/v1/me", &alice).await;
    let titles: Vec<_> = me.body["rooms"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap().to_owned()).collect();
    assert_eq!(titles, ["Alice's room", "Late show"]);

    let bad = app.call(Method::PATCH, &format!("/api/v1/rooms/{id}"), Some(&alice), Some(json!({"title": ""}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = app.post("/api/v1/rooms", &alice, json!({"title": "x".repeat(101)})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let personal_delete = app.call(Method::DELETE, &format!("/api/v1/rooms/{personal}"), Some(&alice), None).await;
    assert_eq!(personal_delete.status, StatusCode::CONFLICT);
    assert_eq!(personal_delete.code(), "personal_room");
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/rooms/{id}"), Some(&alice), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/rooms/{id}"), &alice).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_ids_get_404() {
    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    assert_eq!(app.get("/api/v1/rooms/doesnotexist", &alice).await.status, StatusCode::NOT_FOUND);
    let odd = app.get("/api/v1/rooms/%00%2F..%2F", &alice).await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
    let invite = app.post("/api/v1/rooms/nope/invitations", &alice, json!({"username": "alice"})).await;
    assert_eq!(invite.status, StatusCode::NOT_FOUND);
    let nobody = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "nobody"})).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert_eq!(nobody.code(), "user_not_found");
    for path in ["/api/v1/invitations/nope/accept", "/api/v1/invitations/nope/decline", "/api/v1/invite-links/nope/accept"] {
        assert_eq!(app.post(path, &alice, Value::Null).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let member = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/members/nobody"), Some(&alice), Some(json!({"role": "admin"}))).await;
    assert_eq!(member.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/nothing-here", &alice).await.code(), "no_such_route");
}

#[tokio::test]
async fn admins_and_members_are_managed_by_rank() {
    let app = test_app().await;
    let (host, room) = app.register("hana").await;
    let (adam, _) = app.register("adam").await;
    let (mona, _) = app.register("mona").await;
    let (ivan, _) = app.register("ivan").await;
    for t in [&adam, &mona, &ivan] {
        app.join_by_link(&host, &room, t).await;
    }
    let base = format!("/api/v1/rooms/{room}/members");
    let promote = app.call(Method::PUT, &format!("{base}/adam"), Some(&host), Some(json!({"role": "admin"}))).await;
    assert_eq!(promote.status, StatusCode::OK);
    let roles: Vec<_> = promote.body["members"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap().to_owned()).collect();
    assert_eq!(roles, ["host", "admin", "member", "member"]);

    let bad_role = app.call(Method::PUT, &format!("{base}/mona"), Some(&host), Some(json!({"role": "host"}))).await;
    assert_eq!(bad_role.status, StatusCode::BAD_REQUEST);
    let demote_host = app.call(Method::PUT, &format!("{base}/hana"), Some(&host), Some(json!({"role": "member"}))).await;
    assert_eq!(demote_host.status, StatusCode::CONFLICT);

    // An admin removes members but not the host or other admins.
    assert_eq!(app.call(Method::DELETE, &format!("{base}/hana"), Some(&adam), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &format!("{base}/ivan"), Some(&adam), None).await.status, StatusCode::NO_CONTENT);
    // A member leaves by removing themselves; the host cannot leave.
    assert_eq!(app.call(Method::DELETE, &format!("{base}/mona"), Some(&mona), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/rooms/{room}"), &mona).await.status, StatusCode::FORBIDDEN);
    let host_leaves = app.call(Method::DELETE, &format!("{base}/hana"), Some(&host), None).await;
    assert_eq!(host_leaves.status, StatusCode::CONFLICT);
    assert_eq!(app.call(Method::DELETE, &format!("{base}/adam"), Some(&host), None).await.status, StatusCode::NO_CONTENT);
    let left = app.get(&format!("/api/v1/rooms/{room}"), &host).await;
    assert_eq!(left.body["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn user_search_is_paginated_and_needs_login() {
    let app = test_app().await;
    let (alice, _) = app.register("alice").await;
    for name in ["ann1", "ann2", "ann3", "ann4", "ann5"] {
        app.register(name).await;
    }
    let page1 = app.get("/api/v1/users?q=ann&limit=2", &alice).await;
    assert_eq!(page1.body["users"].as_array().unwrap().len(), 2);
    assert_eq!(page1.body["users"][0], json!({"username": "ann1", "display_name": "Ann1"}));
    assert_eq!(page1.body["next_offset"], 2);
    let page3 = app.get("/api/v1/users?q=ann&limit=2&offset=4", &alice).await;
    assert_eq!(page3.body["users"][0]["username"], "ann5");
    assert_eq!(page3.body["next_offset"], Value::Null);
    let by_display = app.get("/api/v1/users?q=Ali", &alice).await;
    assert_eq!(by_display.body["users"][0]["username"], "alice");
    for bad in ["/api/v1/users", "/api/v1/users?q=", "/api/v1/users?q=a&limit=0", "/api/v1/users?q=a&limit=101", "/api/v1/users?q=a&limit=x"] {
        assert_eq!(app.get(bad, &alice).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
