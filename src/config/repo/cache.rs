//! The config cache: parsed configs by blob sha and what each (repo, ref)
//! last resolved to, with the bounded, budgeted parsing the server uses.
//! Apart from the schema because it is about GitHub round trips and memory,
//! not about what the file says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;

use super::{ConfigError, RepoConfig, CONFIG_PATH};
use crate::github::content::FileRead;
use crate::github::{Api, GitHubError};

/// Where a loaded config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The repository has no `.github/shipgate.yml`: defaults apply.
    Missing,
    /// The file with this blob sha.
    File { sha: String },
}

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub source: ConfigSource,
    pub config: Result<Arc<RepoConfig>, ConfigError>,
}

/// Limits of a [`ConfigCache`].
#[derive(Debug, Clone)]
pub struct ConfigCacheLimits {
    /// Parsed configs kept, and as many ref resolutions; the least recently
    /// used go first, so one busy repository cannot empty it for everyone.
    pub entries: usize,
    /// Bytes of config text whose parses are kept: what bounds the memory,
    /// since a parse takes about 2 to 20 times its text (a 64 KiB file of
    /// one-character list items, 1.3 MB).
    pub text_bytes: usize,
    /// Parses running at once, each on a blocking thread, never on the
    /// async runtime's.
    pub parallel_parses: usize,
    /// A parse that takes longer counts as an invalid file. With the size
    /// and depth caps a parse takes milliseconds; this is the backstop.
    pub parse_budget: Duration,
}

impl Default for ConfigCacheLimits {
    fn default() -> Self {
        ConfigCacheLimits {
            entries: 10_000,
            text_bytes: 32 << 20,
            parallel_parses: 2,
            parse_budget: Duration::from_secs(5),
        }
    }
}

/// Parsed configs by blob sha, and what each (repo, ref) last resolved to.
/// A commit sha never changes, so a ref that is one is answered from memory
/// with no request; a branch costs one conditional request (a 304 when the
/// file is unchanged, which does not count against the rate limit) and no
/// parsing. Both maps are least-recently-used caches of bounded size; a
/// blob's parse (or its error) is kept, so the same file is parsed once.
pub struct ConfigCache {
    by_sha: Mutex<ParsedCache>,
    refs: Mutex<LruCache<(String, String), RefEntry>>,
    parses: Arc<tokio::sync::Semaphore>,
    parse_budget: Duration,
}

/// A parsed config, or why the file is invalid.
type Parsed = Result<Arc<RepoConfig>, ConfigError>;

#[derive(Clone)]
struct RefEntry {
    etag: Option<String>,
    /// The blob sha, or `None` when the file was missing.
    blob: Option<String>,
    /// The length of the blob's text.
    text_bytes: usize,
    /// For a missing file: the repository's config generation read before
    /// GitHub said so, and when (see [`ConfigCache::load_at_generation`]).
    missing_since: Option<(i64, std::time::Instant)>,
}

/// How long a branch's missing config is believed without asking GitHub
/// again, while no push to the repository was processed since: a push
/// webhook that is lost delays a new file by at most this long.
pub const MISSING_CONFIG_TTL: Duration = Duration::from_secs(60);

/// Parses by blob sha, least recently used first out, bounded in count and
/// in the bytes of text they were parsed from.
struct ParsedCache {
    lru: LruCache<String, (Parsed, usize)>,
    text_bytes: usize,
    max_entries: usize,
    max_text_bytes: usize,
}

impl ParsedCache {
    fn get(&mut self, blob: &str) -> Option<Parsed> {
        self.lru.get(blob).map(|(parsed, _)| parsed.clone())
    }

    fn insert(&mut self, blob: String, parsed: Parsed, text_bytes: usize) {
        if let Some((_, old)) = self.lru.insert(blob, (parsed, text_bytes)) {
            self.text_bytes -= old;
        }
        self.text_bytes += text_bytes;
        // The entry just added stays, even alone over the byte cap: it is
        // the one in use.
        while self.lru.len() > 1
            && (self.lru.len() > self.max_entries || self.text_bytes > self.max_text_bytes)
        {
            if let Some((_, (_, size))) = self.lru.remove_lru() {
                self.text_bytes -= size;
            }
        }
    }
}

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache::with_limits(ConfigCacheLimits::default())
    }
}

fn is_commit_sha(git_ref: &str) -> bool {
    git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ConfigCache {
    pub fn with_limits(limits: ConfigCacheLimits) -> Self {
        ConfigCache {
            by_sha: Mutex::new(ParsedCache {
                lru: LruCache::new_unbounded(),
                text_bytes: 0,
                max_entries: limits.entries.max(1),
                max_text_bytes: limits.text_bytes,
            }),
            refs: Mutex::new(LruCache::new(limits.entries.max(1))),
            parses: Arc::new(tokio::sync::Semaphore::new(limits.parallel_parses.max(1))),
            parse_budget: limits.parse_budget,
        }
    }

    /// Drops every parsed config but keeps what each ref resolved to (and
    /// its ETag), as eviction under pressure does. For tests.
    pub fn evict_parsed(&self) {
        let mut by_sha = self.by_sha.lock().expect("poisoned");
        by_sha.lru.clear();
        by_sha.text_bytes = 0;
    }

    /// Loads `.github/shipgate.yml` of `repo` at `git_ref` (a branch or commit sha).
    pub async fn load(
        &self,
        api: &Api,
        repo: &str,
        git_ref: &str,
    ) -> Result<LoadedConfig, GitHubError> {
        self.load_at_generation(api, repo, git_ref, None).await
    }

    /// Whether [`ConfigCache::load_at_generation`] of this ref has a use for
    /// the repository's generation: a branch not known to have the file
    /// (a commit's answer never changes, and a known file is asked about
    /// with its ETag anyway).
    pub fn wants_generation(&self, repo: &str, git_ref: &str) -> bool {
        !is_commit_sha(git_ref)
            && self
                .ref_entry(&(repo.to_string(), git_ref.to_string()))
                .is_none_or(|e| e.blob.is_none())
    }

    /// [`ConfigCache::load`], given the repository's config generation read
    /// just before (a counter the store bumps on every push to the
    /// repository, on whichever replica processes it). A branch where the
    /// file was missing at the same generation, less than
    /// [`MISSING_CONFIG_TTL`] ago, is answered "missing" with no request:
    /// most repositories an App is installed on have no config, and without
    /// this every delivery of theirs cost a request (and a 404 counts
    /// against the rate limit). A push bumps the generation first, so the
    /// file it adds is read by the next delivery in the repository's order.
    pub async fn load_at_generation(
        &self,
        api: &Api,
        repo: &str,
        git_ref: &str,
        generation: Option<i64>,
    ) -> Result<LoadedConfig, GitHubError> {
        let key = (repo.to_string(), git_ref.to_string());
        let known = self.ref_entry(&key);
        if let (Some((seen, at)), Some(now)) =
            (known.as_ref().and_then(|k| k.missing_since), generation)
        {
            if seen == now && at.elapsed() < MISSING_CONFIG_TTL {
                return Ok(LoadedConfig {
                    source: ConfigSource::Missing,
                    config: Ok(Arc::new(RepoConfig::default())),
                });
            }
        }
        // Taken now and held through the request, so a 304 can be answered
        // even if the parse is evicted meanwhile.
        let cached = known.as_ref().and_then(|k| self.loaded_from_entry(k));
        if let (Some(loaded), true) = (&cached, is_commit_sha(git_ref)) {
            return Ok(loaded.clone());
        }
        // An ETag is only sent when its 304 can be answered from memory.
        let etag = match &cached {
            Some(_) => known.as_ref().and_then(|k| k.etag.as_deref()),
            None => None,
        };
        let read = match api.get_file(repo, CONFIG_PATH, git_ref, etag).await? {
            FileRead::NotModified => match cached {
                Some(loaded) => {
                    if let (ConfigSource::File { sha }, Some(entry)) = (&loaded.source, known) {
                        let size = entry.text_bytes;
                        self.remember_parsed(sha.clone(), loaded.config.clone(), size);
                        self.remember_ref(key, entry);
                    }
                    return Ok(loaded);
                }
                // A 304 to a request without an ETag: read the file whole.
                None => api.get_file(repo, CONFIG_PATH, git_ref, None).await?,
            },
            read => read,
        };
        let (blob, text, etag) = match read {
            FileRead::Missing => {
                let entry = RefEntry {
                    etag: None,
                    blob: None,
                    text_bytes: 0,
                    missing_since: generation
                        .filter(|_| !is_commit_sha(git_ref))
                        .map(|g| (g, std::time::Instant::now())),
                };
                self.remember_ref(key, entry);
                return Ok(LoadedConfig {
                    source: ConfigSource::Missing,
                    config: Ok(Arc::new(RepoConfig::default())),
                });
            }
            FileRead::NotModified => {
                return Err(GitHubError::Decode(
                    "304 Not Modified to a request without an ETag".into(),
                ))
            }
            FileRead::Found(file) => (file.sha, file.text, file.etag),
        };
        let text_bytes = text.len();
        // The same blob may be known from another ref: it is parsed once.
        let parsed = match self.parsed(&blob) {
            Some(parsed) => parsed,
            None => {
                let parsed = self
                    .parse_bounded(move || RepoConfig::parse(&text).map(Arc::new))
                    .await;
                self.remember_parsed(blob.clone(), parsed.clone(), text_bytes);
                parsed
            }
        };
        let entry = RefEntry {
            etag,
            blob: Some(blob.clone()),
            text_bytes,
            missing_since: None,
        };
        self.remember_ref(key, entry);
        Ok(LoadedConfig {
            source: ConfigSource::File { sha: blob },
            config: parsed,
        })
    }

    /// Runs `parse` on a blocking thread once one of the parse permits is
    /// free. The permit goes with the thread, so a parse that outlives its
    /// budget still counts against the bound until it really ends; the
    /// caller stops waiting at the budget and gets an error instead.
    async fn parse_bounded<F>(&self, parse: F) -> Parsed
    where
        F: FnOnce() -> Parsed + Send + 'static,
    {
        let permit = self
            .parses
            .clone()
            .acquire_owned()
            .await
            .expect("the parse semaphore is never closed");
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            parse()
        });
        let error = |message: String| {
            Err(ConfigError {
                location: None,
                message,
            })
        };
        match tokio::time::timeout(self.parse_budget, task).await {
            Ok(Ok(parsed)) => parsed,
            Ok(Err(failed)) => error(format!("the YAML parser failed on this file ({failed})")),
            Err(_) => error(format!(
                "parsing took longer than {} ms; simplify the file",
                self.parse_budget.as_millis()
            )),
        }
    }

    fn loaded_from_entry(&self, entry: &RefEntry) -> Option<LoadedConfig> {
        match &entry.blob {
            None => Some(LoadedConfig {
                source: ConfigSource::Missing,
                config: Ok(Arc::new(RepoConfig::default())),
            }),
            Some(blob) => self.parsed(blob).map(|parsed| LoadedConfig {
                source: ConfigSource::File { sha: blob.clone() },
                config: parsed,
            }),
        }
    }

    fn parsed(&self, blob: &str) -> Option<Parsed> {
        self.by_sha.lock().expect("poisoned").get(blob)
    }

    fn remember_parsed(&self, blob: String, parsed: Parsed, text_bytes: usize) {
        self.by_sha
            .lock()
            .expect("poisoned")
            .insert(blob, parsed, text_bytes);
    }

    fn ref_entry(&self, key: &(String, String)) -> Option<RefEntry> {
        self.refs.lock().expect("poisoned").get(key).cloned()
    }

    fn remember_ref(&self, key: (String, String), entry: RefEntry) {
        self.refs.lock().expect("poisoned").insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One busy repository filled the cache and it was emptied whole, so
    /// every other repository's config was read and parsed again. Now only
    /// the least recently used entries go.
    #[test]
    fn a_busy_repository_evicts_only_the_least_recently_used_entries() {
        let cache = ConfigCache::with_limits(ConfigCacheLimits {
            entries: 3,
            ..Default::default()
        });
        let parsed = || Ok(Arc::new(RepoConfig::default()));
        let entry = |blob: &str| RefEntry {
            etag: Some(format!("\"{blob}\"")),
            blob: Some(blob.into()),
            text_bytes: 10,
            missing_since: None,
        };
        let key = |repo: &str| (repo.to_string(), "main".to_string());
        cache.remember_parsed("quiet".into(), parsed(), 10);
        cache.remember_ref(key("quiet/app"), entry("quiet"));
        cache.remember_parsed("busy-1".into(), parsed(), 10);
        cache.remember_ref(key("busy/1"), entry("busy-1"));
        // The quiet repository is used again; the busy one goes on.
        assert!(cache.parsed("quiet").is_some());
        assert!(cache.ref_entry(&key("quiet/app")).is_some());
        for n in 2..=3 {
            cache.remember_parsed(format!("busy-{n}"), parsed(), 10);
            cache.remember_ref(key(&format!("busy/{n}")), entry(&format!("busy-{n}")));
        }
        assert!(cache.parsed("quiet").is_some(), "recently used: kept");
        assert!(cache.ref_entry(&key("quiet/app")).is_some());
        assert!(
            cache.parsed("busy-1").is_none(),
            "least recently used: evicted"
        );
        assert!(cache.ref_entry(&key("busy/1")).is_none());
        for n in 2..=3 {
            assert!(cache.parsed(&format!("busy-{n}")).is_some());
        }
    }

    #[test]
    fn parses_are_also_bounded_by_the_bytes_of_text_they_came_from() {
        let cache = ConfigCache::with_limits(ConfigCacheLimits {
            entries: 100,
            text_bytes: 100,
            ..Default::default()
        });
        let parsed = || Ok(Arc::new(RepoConfig::default()));
        cache.remember_parsed("a".into(), parsed(), 40);
        cache.remember_parsed("b".into(), parsed(), 40);
        assert!(cache.parsed("a").is_some());
        cache.remember_parsed("c".into(), parsed(), 40);
        assert!(cache.parsed("b").is_none(), "least recently used goes");
        assert!(cache.parsed("a").is_some() && cache.parsed("c").is_some());
        // One entry larger than the whole budget is kept alone.
        cache.remember_parsed("huge".into(), parsed(), 1_000);
        assert!(cache.parsed("huge").is_some());
        assert!(cache.parsed("a").is_none() && cache.parsed("c").is_none());
        assert_eq!(cache.by_sha.lock().unwrap().text_bytes, 1_000);
    }

    /// A parse that outlives its budget is abandoned with an error, and its
    /// permit stays taken until the thread really ends, so such parses
    /// cannot pile up beyond the bound.
    #[tokio::test]
    async fn parses_run_off_the_async_threads_within_a_budget_and_a_bound() {
        let cache = Arc::new(ConfigCache::with_limits(ConfigCacheLimits {
            parallel_parses: 1,
            parse_budget: Duration::from_millis(200),
            ..Default::default()
        }));
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let e = cache
            .parse_bounded(move || {
                let _ = stuck.recv();
                Ok(Arc::new(RepoConfig::default()))
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "parsing took longer than 200 ms; simplify the file"
        );
        // The stuck parse still holds the only permit: the next one waits.
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let next = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .parse_bounded(move || {
                        let _ = started_tx.send(());
                        RepoConfig::parse("version: 1\n").map(Arc::new)
                    })
                    .await
            }
        });
        assert_eq!(cache.parses.available_permits(), 0);
        release.send(()).unwrap();
        started
            .await
            .expect("the next parse runs once the stuck one ends");
        assert!(next.await.unwrap().is_ok());
        assert_eq!(cache.parses.available_permits(), 1);
    }
}
