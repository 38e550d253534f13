//! [`AppState`]: what every handler shares.

use std::collections::VecDeque;
use std::sync::Arc;

use ow_domain::battletag::PlayerId;
use parking_lot::Mutex;

use crate::config::WebSettings;
use crate::limits::Limits;
use crate::lookup::LookupTracker;
use crate::metrics::HttpMetrics;
use crate::page_cache::PageCache;
use crate::pipeline::{PipelineSource, RateTracker, StageControl, StreamsProbe, TopicBrowser};
use crate::repository::PlayerRepository;
use crate::requests::PlayerRequests;
use crate::{Clock, StoreChanges, system_clock};

/// What the dashboard's handlers share: where data comes from, where requests go, the optional
/// pipeline hooks, settings, and the in-memory bookkeeping (look-ups in flight, rate limits,
/// recently viewed players, HTTP metrics). Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use ow_web::{AppState, MemoryRepository, PlayerRequests, WebSettings};
/// # use ow_web::Error;
/// # struct Nowhere;
/// # #[async_trait::async_trait]
/// # impl PlayerRequests for Nowhere {
/// #     async fn send(&self, _: ow_domain::PlayerRequest)
/// #         -> Result<Option<ow_stream_core::client::Delivered>, Error> { Ok(None) }
/// # }
///
/// let state = AppState::new(Arc::new(MemoryRepository::new()), Arc::new(Nowhere))
///     .with_settings(WebSettings::default());
/// let app: axum::Router = ow_web::app(state);
/// ```
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: WebSettings,
    pub(crate) repository: Arc<dyn PlayerRepository>,
    pub(crate) requests: Arc<dyn PlayerRequests>,
    pub(crate) pipeline: Option<Arc<dyn PipelineSource>>,
    pub(crate) control: Option<Arc<dyn StageControl>>,
    pub(crate) browser: Option<Arc<dyn TopicBrowser>>,
    pub(crate) streams: Option<Arc<dyn StreamsProbe>>,
    pub(crate) clock: Clock,
    pub(crate) lookups: LookupTracker,
    pub(crate) limits: Limits,
    pub(crate) recent: Mutex<VecDeque<PlayerId>>,
    pub(crate) metrics: HttpMetrics,
    pub(crate) rates: RateTracker,
    /// The versions of the players' data, when the repository's stores report them: enables
    /// the page cache and wakes long-polls early.
    pub(crate) changes: Option<StoreChanges>,
    /// Rendered player pages (used only with `changes`).
    pub(crate) pages: PageCache,
    /// Woken when a look-up is written (the look-up state of a page changes).
    pub(crate) lookups_changed: StoreChanges,
}

/// The brokers are unreachable: since when, and a sentence for `/healthz` and the pipeline
/// page (no host names).
#[derive(Clone, Debug)]
pub(crate) struct BrokerOutage {
    pub(crate) since_ms: i64,
    pub(crate) text: String,
}

impl AppState {
    /// A state reading players from `repository` and writing requests to `requests`, with
    /// default settings and no pipeline hooks.
    pub fn new(
        repository: Arc<dyn PlayerRepository>,
        requests: Arc<dyn PlayerRequests>,
    ) -> AppState {
        let settings = WebSettings::default();
        AppState {
            inner: Arc::new(Inner {
                lookups: LookupTracker::new(settings.max_pending_lookups),
                limits: Limits::new(&settings),
                settings,
                repository,
                requests,
                pipeline: None,
                control: None,
                browser: None,
                streams: None,
                clock: system_clock(),
                recent: Mutex::new(VecDeque::new()),
                metrics: HttpMetrics::default(),
                rates: RateTracker::default(),
                changes: None,
                pages: PageCache::default(),
                lookups_changed: StoreChanges::new(),
            }),
        }
    }

    /// Changes one part of a state still being built.
    fn edit(self, f: impl FnOnce(&mut Inner)) -> AppState {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            // A clone exists already: rebuild from its parts (bookkeeping starts empty).
            Err(shared) => Inner {
                settings: shared.settings.clone(),
                repository: shared.repository.clone(),
                requests: shared.requests.clone(),
                pipeline: shared.pipeline.clone(),
                control: shared.control.clone(),
                browser: shared.browser.clone(),
                streams: shared.streams.clone(),
                clock: shared.clock.clone(),
                lookups: LookupTracker::new(shared.settings.max_pending_lookups),
                limits: Limits::new(&shared.settings),
                recent: Mutex::new(VecDeque::new()),
                metrics: HttpMetrics::default(),
                rates: RateTracker::default(),
                changes: shared.changes.clone(),
                pages: PageCache::new(shared.settings.page_cache_bytes),
                lookups_changed: StoreChanges::new(),
            },
        };
        f(&mut inner);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Sets time-outs and rate limits.
    pub fn with_settings(self, settings: WebSettings) -> AppState {
        self.edit(|inner| {
            inner.lookups = LookupTracker::new(settings.max_pending_lookups);
            inner.limits = Limits::new(&settings);
            inner.pages = PageCache::new(settings.page_cache_bytes);
            inner.settings = settings;
        })
    }

    /// Feeds the pipeline page (`/pipeline`, `/api/pipeline`).
    pub fn with_pipeline(self, source: Arc<dyn PipelineSource>) -> AppState {
        self.edit(|inner| inner.pipeline = Some(source))
    }

    /// Enables the pause and resume buttons of the pipeline page.
    pub fn with_stage_control(self, control: Arc<dyn StageControl>) -> AppState {
        self.edit(|inner| inner.control = Some(control))
    }

    /// Enables the topic browser of the pipeline page.
    pub fn with_topic_browser(self, browser: Arc<dyn TopicBrowser>) -> AppState {
        self.edit(|inner| inner.browser = Some(browser))
    }

    /// Reports the web's own streams app in `/metrics` and `/healthz`.
    pub fn with_streams(self, streams: Arc<dyn StreamsProbe>) -> AppState {
        self.edit(|inner| inner.streams = Some(streams))
    }

    /// Tells the handlers when the data of a player changes in the repository's stores
    /// ([`WebStage::changes`](crate::WebStage::changes), or the [`StoreChanges`] given to
    /// [`materialize::topology_with_changes`](crate::materialize::topology_with_changes)).
    /// With it, rendered player pages are kept (bytes, with an `ETag`) for as long as their
    /// player's version stays the same, and the status endpoint's long-poll wakes as soon as the
    /// stores change. Without it, every page is rendered from the stores, and a long-poll
    /// checks the stores every 100 ms instead.
    pub fn with_store_changes(self, changes: StoreChanges) -> AppState {
        self.edit(|inner| inner.changes = Some(changes))
    }

    /// Replaces the clock (milliseconds since the epoch), for tests.
    pub fn with_clock(self, clock: Clock) -> AppState {
        self.edit(|inner| inner.clock = clock)
    }

    /// The settings.
    pub fn settings(&self) -> &WebSettings {
        &self.inner.settings
    }

    pub(crate) fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// The outage of the brokers the web's streams app sees now, if any.
    pub(crate) fn broker_outage(&self) -> Option<BrokerOutage> {
        let streams = self.inner.streams.as_ref()?;
        match streams.broker_connectivity() {
            ow_stream_core::runtime::BrokerConnectivity::Unreachable { since_ms, reason } => {
                // librdkafka's reason names hosts: logs only.
                tracing::debug!(%reason, "brokers unreachable");
                let secs = (self.now() - since_ms).max(0) / 1000;
                Some(BrokerOutage {
                    since_ms,
                    text: format!(
                        "the Kafka brokers have been unreachable for {secs} s; every stage \
                         reconnects by itself when they are back"
                    ),
                })
            }
            _ => None,
        }
    }

    /// Remembers that `id` was viewed (most recent first, bounded).
    pub(crate) fn viewed(&self, id: &PlayerId) {
        let mut recent = self.inner.recent.lock();
        recent.retain(|r| r != id);
        recent.push_front(id.clone());
        recent.truncate(self.inner.settings.recent_players);
    }

    /// The players viewed lately, most recent first.
    pub(crate) fn recently_viewed(&self) -> Vec<PlayerId> {
        self.inner.recent.lock().iter().cloned().collect()
    }
}
