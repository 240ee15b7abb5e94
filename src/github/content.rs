//! Typed wrappers for the REST endpoints shipgate calls. Request and response
//! types are our own small serde structs (see the shared notes on octocrab's).

use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Api, GitHubError};

/// A file read through the contents API.
#[derive(Debug, Clone)]
pub struct RepoFile {
    /// The blob sha: the same text always has the same sha.
    pub sha: String,
    pub text: String,
    pub etag: Option<String>,
}

/// The answer to a conditional file read.
#[derive(Debug)]
pub enum FileRead {
    Found(RepoFile),
    /// The `If-None-Match` etag still holds (304; not counted against the rate limit).
    NotModified,
    Missing,
}

#[derive(Debug, Deserialize)]
struct ContentResponse {
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Error,
    Failure,
    Pending,
    Success,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewStatus<'a> {
    pub state: StatusState,
    pub context: &'a str,
    pub description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<&'a str>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CommitStatus {
    pub context: String,
    pub state: StatusState,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CombinedStatus {
    #[serde(default)]
    total_count: usize,
    statuses: Vec<CommitStatus>,
}

/// Percent-encodes each path segment (file paths and refs may hold spaces or `#`).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            url::form_urlencoded::byte_serialize(seg.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Api {
    /// Reads `path` at `git_ref` (a branch, tag or sha). With `etag`, a
    /// response of 304 means the cached copy is current.
    pub async fn get_file(
        &self,
        repo: &str,
        path: &str,
        git_ref: &str,
        etag: Option<&str>,
    ) -> Result<FileRead, GitHubError> {
        let mut headers = HeaderMap::new();
        if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(http::header::IF_NONE_MATCH, tag);
        }
        let uri = format!(
            "/repos/{repo}/contents/{}?ref={}",
            encode_path(path),
            url::form_urlencoded::byte_serialize(git_ref.as_bytes()).collect::<String>()
        );
        let resp = match self.send(Method::GET, &uri, None::<&()>, headers).await {
            Ok(r) => r,
            Err(GitHubError::NotFound(_)) => return Ok(FileRead::Missing),
            Err(e) => return Err(e),
        };
        if resp.status == StatusCode::NOT_MODIFIED {
            return Ok(FileRead::NotModified);
        }
        let etag = resp.header("etag").map(str::to_string);
        let body: ContentResponse = resp.json()?;
        if body.kind != "file" {
            return Ok(FileRead::Missing);
        }
        let text = match (body.encoding.as_deref(), body.content) {
            (Some("base64"), Some(content)) => {
                let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| GitHubError::Decode(format!("{path}: {e}")))?;
                String::from_utf8(bytes)
                    .map_err(|_| GitHubError::Decode(format!("{path} is not UTF-8")))?
            }
            (enc, _) => {
                return Err(GitHubError::Decode(format!(
                    "{path}: unsupported content encoding {enc:?}"
                )))
            }
        };
        Ok(FileRead::Found(RepoFile {
            sha: body.sha,
            text,
            etag,
        }))
    }

    /// `GET /repos/{repo}/commits/{ref}/status`: the latest status per
    /// context, all pages.
    pub async fn combined_status(
        &self,
        repo: &str,
        git_ref: &str,
    ) -> Result<Vec<CommitStatus>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=super::MAX_LIST_PAGES {
            let body: CombinedStatus = self
                .get(&format!(
                    "/repos/{repo}/commits/{}/status?per_page=100&page={page}",
                    encode_path(git_ref)
                ))
                .await?;
            let done = body.statuses.len() < 100;
            all.extend(body.statuses);
            if done || all.len() >= body.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// `POST /repos/{repo}/statuses/{sha}`.
    pub async fn create_status(
        &self,
        repo: &str,
        sha: &str,
        status: &NewStatus<'_>,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .post(&format!("/repos/{repo}/statuses/{sha}"), status)
            .await?;
        Ok(())
    }
}
