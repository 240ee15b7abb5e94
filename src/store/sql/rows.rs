//! Row mappers and the column lists they read: one place that turns a row
//! of each table into its type, shared by every topic's statements.

use sqlx::Row;

use crate::store::{
    ClaimedDelivery, CommandRun, DeliveryRecord, DeliveryState, DeliveryStatus, Lock, LockKind,
    Payload, ProtectionRequest, QueuedDeploy, StoreError,
};

pub(in crate::store) fn claimed_from_row<R>(r: &R) -> Result<ClaimedDelivery, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ClaimedDelivery {
        seq: r.try_get("seq")?,
        delivery_id: r.try_get("delivery_id")?,
        event: r.try_get("event")?,
        action: r.try_get("action")?,
        installation_id: r.try_get("installation_id")?,
        repository: r.try_get("repository")?,
        // Rows stored before payloads were compressed keep their text in `payload`.
        payload: match r.try_get::<Option<Vec<u8>>, _>("payload_lz4")? {
            Some(stored) => Payload::decompress(&stored)?,
            None => r.try_get("payload")?,
        },
        attempts: r.try_get("attempts")?,
        claimed_by: r.try_get("locked_by")?,
    })
}

pub(in crate::store) fn status_from_row<R>(r: &R) -> Result<DeliveryStatus, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = r.try_get("state")?;
    Ok(DeliveryStatus {
        delivery_id: r.try_get("delivery_id")?,
        event: r.try_get("event")?,
        state: DeliveryState::parse(&state)?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
    })
}

macro_rules! record_select {
    () => {
        "SELECT seq, delivery_id, event, action, installation_id, repository, state, attempts, last_error, received_at, next_attempt_at, locked_by, locked_until, finished_at, payload, payload_lz4 FROM deliveries"
    };
}
pub(crate) use record_select;

pub(in crate::store) fn record_from_row<R>(r: &R) -> Result<DeliveryRecord, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = r.try_get("state")?;
    Ok(DeliveryRecord {
        seq: r.try_get("seq")?,
        delivery_id: r.try_get("delivery_id")?,
        event: r.try_get("event")?,
        action: r.try_get("action")?,
        installation_id: r.try_get("installation_id")?,
        repository: r.try_get("repository")?,
        state: DeliveryState::parse(&state)?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        received_at: r.try_get("received_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        locked_by: r.try_get("locked_by")?,
        locked_until: r.try_get("locked_until")?,
        finished_at: r.try_get("finished_at")?,
    })
}

macro_rules! lock_select {
    () => {
        "SELECT repository, environment, kind, holder, pr, owner_token, deployment_id, reason, expires_at, created_at FROM env_locks"
    };
}
pub(crate) use lock_select;

macro_rules! run_select {
    () => {
        "SELECT repository, comment_id, line, command, environment, actor, pr, reply_comment_id, deployment_id, model, created_at, position FROM command_runs"
    };
}
pub(crate) use run_select;

macro_rules! queue_select {
    () => {
        "SELECT seq, repository, environment, pr, comment_id, line, actor, git_ref, installation_id, created_at FROM deploy_queue"
    };
}
pub(crate) use queue_select;

pub(in crate::store) fn lock_from_row<R>(r: &R) -> Result<Lock, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = r.try_get("kind")?;
    Ok(Lock {
        repository: r.try_get("repository")?,
        environment: r.try_get("environment")?,
        kind: LockKind::parse(&kind)?,
        holder: r.try_get("holder")?,
        pr: r.try_get("pr")?,
        owner_token: r.try_get("owner_token")?,
        deployment_id: r.try_get("deployment_id")?,
        reason: r.try_get("reason")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(in crate::store) fn run_from_row<R>(r: &R) -> Result<CommandRun, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(CommandRun {
        repository: r.try_get("repository")?,
        comment_id: r.try_get("comment_id")?,
        line: r.try_get("line")?,
        command: r.try_get("command")?,
        environment: r.try_get("environment")?,
        actor: r.try_get("actor")?,
        pr: r.try_get("pr")?,
        reply_comment_id: r.try_get("reply_comment_id")?,
        deployment_id: r.try_get("deployment_id")?,
        model: r.try_get("model")?,
        created_at: r.try_get("created_at")?,
        position: r.try_get("position")?,
    })
}

pub(in crate::store) fn queued_from_row<R>(r: &R) -> Result<QueuedDeploy, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(QueuedDeploy {
        seq: r.try_get("seq")?,
        repository: r.try_get("repository")?,
        environment: r.try_get("environment")?,
        pr: r.try_get("pr")?,
        comment_id: r.try_get("comment_id")?,
        line: r.try_get("line")?,
        actor: r.try_get("actor")?,
        git_ref: r.try_get("git_ref")?,
        installation_id: r.try_get("installation_id")?,
        created_at: r.try_get("created_at")?,
    })
}

macro_rules! protection_select {
    () => {
        "SELECT id, repository, environment, deployment_id, callback_url, sha, git_ref, pr, reviewed_sha, installation_id, state, deadline, next_check_at, progress_posts, last_comment, created_at FROM protection_requests"
    };
}
pub(crate) use protection_select;

pub(in crate::store) fn protection_from_row<R>(r: &R) -> Result<ProtectionRequest, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ProtectionRequest {
        id: r.try_get("id")?,
        repository: r.try_get("repository")?,
        environment: r.try_get("environment")?,
        deployment_id: r.try_get("deployment_id")?,
        callback_url: r.try_get("callback_url")?,
        sha: r.try_get("sha")?,
        git_ref: r.try_get("git_ref")?,
        pr: r.try_get("pr")?,
        reviewed_sha: r.try_get("reviewed_sha")?,
        installation_id: r.try_get("installation_id")?,
        state: r.try_get("state")?,
        deadline: r.try_get("deadline")?,
        next_check_at: r.try_get("next_check_at")?,
        progress_posts: r.try_get("progress_posts")?,
        last_comment: r.try_get("last_comment")?,
        created_at: r.try_get("created_at")?,
    })
}
